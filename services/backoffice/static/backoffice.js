// Progressive enhancement of the live priorities: the page works without this file (reload to refresh).
// The server sends the rendered rankings and participation over Server-Sent Events each time they change.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource) { return; }
  var source = new EventSource(live.getAttribute("data-stream"));
  source.addEventListener("update", function (event) {
    live.innerHTML = event.data;
    live.setAttribute("data-updates", String(Number(live.getAttribute("data-updates") || "0") + 1));
  });
  window.addEventListener("pagehide", function () { source.close(); });
})();
