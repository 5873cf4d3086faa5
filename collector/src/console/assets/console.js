// Shaobing console: time zone cookie, live alert rows, bulk selection, overview refresh.
// No inline script anywhere (CSP: script-src 'self').
(function () {
  "use strict";
  var offset = -new Date().getTimezoneOffset();
  if (document.cookie.indexOf("sb_tz=" + offset) < 0) {
    document.cookie = "sb_tz=" + offset + "; path=/; SameSite=Strict";
  }
  var zh = document.body && document.body.getAttribute("data-lang") !== "en";

  function liveAlerts() {
    var table = document.getElementById("alerts-table");
    if (!table || !table.getAttribute("data-fresh-url")) return;
    var tbody = table.querySelector("tbody");
    var status = document.getElementById("live-status");
    var latest = table.getAttribute("data-latest") || "0";
    function poll() {
      var url = table.getAttribute("data-fresh-url") + "&after=" + encodeURIComponent(latest);
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (data) {
          if (data.count > 0) {
            var tpl = document.createElement("template");
            tpl.innerHTML = data.html;
            var rows = Array.prototype.slice.call(tpl.content.querySelectorAll("tr"));
            rows.reverse().forEach(function (row) {
              var old = tbody.querySelector('tr[data-id="' + row.getAttribute("data-id") + '"]');
              if (old) old.parentNode.removeChild(old);
              row.classList.add("fresh");
              tbody.insertBefore(row, tbody.firstChild);
            });
            var empty = document.getElementById("no-alerts");
            if (empty) empty.parentNode.removeChild(empty);
            if (status) status.textContent = (zh ? "新告警：" : "new alerts: ") + data.count;
          }
          if (data.latest) latest = String(data.latest);
        })
        .catch(function () { if (status) status.textContent = zh ? "实时更新暂时中断" : "live updates interrupted"; })
        .then(function () { setTimeout(poll, 3000); });
    }
    setTimeout(poll, 3000);
  }

  function bulkSelect() {
    var all = document.getElementById("select-all");
    if (!all) return;
    all.addEventListener("change", function () {
      document.querySelectorAll('input[name="ids"]').forEach(function (box) { box.checked = all.checked; });
    });
  }

  function overview() {
    var open = document.getElementById("open-count");
    if (!open) return;
    var rate = document.getElementById("ingest-rate");
    function poll() {
      fetch("/api/v1/overview?hours=" + (open.getAttribute("data-hours") || "24"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          if (!d) return;
          open.textContent = d.open;
          if (rate) rate.textContent = d.ingest_events_per_second.toFixed(1);
        })
        .catch(function () {})
        .then(function () { setTimeout(poll, 10000); });
    }
    setTimeout(poll, 10000);
  }

  document.addEventListener("DOMContentLoaded", function () { liveAlerts(); bulkSelect(); overview(); });
})();
