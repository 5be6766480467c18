/* "Copy link" on My sessions (templates/ondemand/sessions.html): a [data-copy-target="#id"]
   button copies that input's value (or element's text) with the Clipboard API. Where there is
   no clipboard (a page served over plain HTTP from another host) or the browser refuses, the
   text is selected instead and the status line says to press Ctrl+C. The buttons start hidden:
   without JavaScript the link is a read-only field to select by hand. */

function textOf(target) {
  return (target.tagName === "INPUT" || target.tagName === "TEXTAREA" ? target.value : target.textContent).trim();
}

function select(target) {
  if (typeof target.select === "function") {
    target.focus();
    target.select();
    return;
  }
  const range = document.createRange();
  range.selectNodeContents(target);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

function say(text) {
  const status = document.querySelector("[data-copy-status]");
  if (status) {
    status.textContent = text;
  }
}

async function copy(button) {
  const target = document.querySelector(button.dataset.copyTarget);
  if (!target) {
    return;
  }
  try {
    if (!navigator.clipboard || !window.isSecureContext) {
      throw new Error("no clipboard here");
    }
    await navigator.clipboard.writeText(textOf(target));
    say("Copied the link.");
  } catch (err) {
    select(target);
    say("The link is selected: press Ctrl+C (\u2318C on a Mac) to copy it.");
  }
}

export function setupCopy(root = document) {
  root.querySelectorAll("[data-copy-target]").forEach((button) => {
    if (button.dataset.copyReady) {
      return;
    }
    button.dataset.copyReady = "1";
    button.hidden = false;
    button.addEventListener("click", () => copy(button));
  });
}
