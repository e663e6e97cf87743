// Every element with data-refresh is redrawn from that URL every 15
// seconds, so a team's view stays current without reloading the page.
(function () {
  function refresh(el) {
    fetch(el.dataset.refresh, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { if (r.ok) { return r.text(); } throw new Error(r.status); })
      .then(function (html) { el.innerHTML = html; })
      .catch(function () { /* keep what is shown; try again next time */ });
  }
  setInterval(function () {
    document.querySelectorAll("[data-refresh]").forEach(refresh);
  }, 15000);
})();
