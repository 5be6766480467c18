/* Browser notifications for the OnDemand queue (templates/ondemand/sessions.html).

   "Notify me" asks the browser's permission (Notification API; browsers only ask after a click).
   From then on, each time HTMX swaps the queue in (every 3 s), a row that is waiting and was not
   waiting before raises one notification naming the computer. Rows waiting when the page loaded
   do not. The choice is remembered in localStorage; the button turns notifications off again.
   The hostname comes from the visitor's agent: it only ever goes into the notification's plain
   text body. */

const STORAGE_KEY = "tessera.ondemand.notify";

function waitingRows(doc) {
  return doc.querySelectorAll('#ondemand-queue tr[data-state="waiting"]');
}

function notify(row) {
  const host = row.dataset.hostname || "A computer";
  try {
    const note = new Notification("OnDemand session waiting", {
      body: `${host} is waiting in your queue.`,
      tag: `tessera-ondemand-${row.dataset.sessionId}`,
    });
    note.addEventListener("click", () => {
      window.focus();
      note.close();
    });
  } catch (err) {
    // Some browsers only notify from a service worker: the queue on the page still shows it.
  }
}

export function setupNotifications(doc = document) {
  const button = doc.getElementById("notify-me");
  if (!button || !("Notification" in window)) {
    return;
  }
  const label = button.querySelector("[data-notify-label]") || button;
  const seen = new Set(Array.from(waitingRows(doc), (row) => row.dataset.sessionId));
  let enabled = Notification.permission === "granted" && localStorage.getItem(STORAGE_KEY) === "on";

  function show() {
    const blocked = Notification.permission === "denied";
    button.disabled = blocked;
    button.setAttribute("aria-pressed", enabled ? "true" : "false");
    label.textContent = blocked ? "Notifications blocked by the browser"
      : enabled ? "Notifications on" : "Notify me";
    button.title = enabled ? "Click to stop notifications" : "Get a browser notification when a session arrives";
  }

  button.addEventListener("click", async () => {
    if (enabled) {
      enabled = false;
      localStorage.removeItem(STORAGE_KEY);
    } else {
      enabled = (await Notification.requestPermission()) === "granted";
      if (enabled) {
        localStorage.setItem(STORAGE_KEY, "on");
      }
    }
    show();
  });

  doc.body.addEventListener("htmx:afterSettle", () => {
    for (const row of waitingRows(doc)) {
      const id = row.dataset.sessionId;
      if (seen.has(id)) {
        continue;
      }
      seen.add(id);
      if (enabled && Notification.permission === "granted") {
        notify(row);
      }
    }
  });

  show();
  button.hidden = false;
}
