/* The console's only script. Everything works without it; with it:
   - the list and the open incident update by themselves: on each `incident` event of the
     stream (Server-Sent Events, URL in <meta name="ticketmon-stream">) the page's live part
     is fetched again (header X-Ticketmon-Fragment: 1) and swapped in, keeping the focus;
   - j / k move between the incidents of the list. */
(function () {
  "use strict";
  var live = document.getElementById("live");
  var status = document.getElementById("live-status");
  var meta = document.querySelector('meta[name="ticketmon-stream"]');
  var busy = false, again = false;

  function focusKey(el) {
    if (!el || !live || !live.contains(el)) return null;
    return el.getAttribute("data-key") || el.id || null;
  }

  function refresh(message) {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, {headers: {"X-Ticketmon-Fragment": "1"},
                                  credentials: "same-origin"})
      .then(function (r) {
        if (r.status === 401) throw new Error("signed out");
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        var key = focusKey(document.activeElement);
        live.innerHTML = html;
        if (key) {
          var target = live.querySelector('[data-key="' + key + '"]') || document.getElementById(key);
          if (target) target.focus();
        }
        if (message && status) status.textContent = message;
      })
      .catch(function (err) {
        if (status) status.textContent = "Live updates stopped: " + err.message + ". Reload the page.";
      })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  if (live && meta && meta.content && window.EventSource) {
    var only = live.getAttribute("data-incident");
    var source = new EventSource(meta.content, {withCredentials: true});
    source.addEventListener("incident", function (event) {
      var change;
      try { change = JSON.parse(event.data); } catch (e) { return; }
      if (only && String(change.id) !== only) return;
      refresh("Incident " + change.id + " " + (change.change || change.status) + ".");
    });
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "j" && event.key !== "k") return;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName)) return;
    var links = Array.prototype.slice.call(document.querySelectorAll("a.row-link"));
    if (!links.length) return;
    var at = links.indexOf(document.activeElement);
    var next = event.key === "j" ? Math.min(at + 1, links.length - 1) : Math.max(at - 1, 0);
    links[next].focus();
    event.preventDefault();
  });
})();
