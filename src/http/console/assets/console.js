// account-ledger console: the only script. It makes the overview's list of
// latest events follow the log (server-sent events from /console/live, each an
// escaped table row rendered by the server). Everything else works without it.
"use strict";
(function () {
  const table = document.getElementById("latest");
  const status = document.getElementById("live-status");
  if (!table || !window.EventSource) return;
  const body = table.tBodies[0];
  const keep = Number(table.dataset.keep || "25");
  const source = new EventSource(table.dataset.live);
  const say = (text) => { if (status) status.textContent = text; };
  source.addEventListener("open", () => say("Live: new events appear as they are written."));
  source.addEventListener("error", () => say("Live updates paused; reconnecting…"));
  source.addEventListener("row", (event) => {
    const empty = document.getElementById("latest-empty");
    if (empty) empty.remove();
    // The row is markup the server rendered and escaped.
    body.insertAdjacentHTML("afterbegin", event.data);
    while (body.rows.length > keep) body.deleteRow(-1);
  });
})();
