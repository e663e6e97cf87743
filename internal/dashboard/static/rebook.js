// NHS.UK frontend's components (the header's menu on a small screen, the
// error summary's focus, buttons' double-click guard), and every element
// with data-refresh redrawn from that URL every 15 seconds, so a team's
// view stays current without reloading the page.
import { initAll } from "/static/nhsuk/nhsuk-frontend.min.js";

initAll();

function refresh(el) {
  fetch(el.dataset.refresh, { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then((r) => { if (r.ok) { return r.text(); } throw new Error(r.status); })
    .then((html) => { el.innerHTML = html; })
    .catch(() => { /* keep what is shown; try again next time */ });
}

setInterval(() => document.querySelectorAll("[data-refresh]").forEach(refresh), 15000);
