/* My sessions (templates/ondemand/sessions.html): Copy link and queue notifications. */
import { setupCopy } from "./copy.js";
import { setupNotifications } from "./notify.js";

setupCopy();
setupNotifications();
