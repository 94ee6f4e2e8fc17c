/* The console's only script. Everything works without it; with it:
   - the list and the open incident update by themselves: on each `incident` event of the
     stream (Server-Sent Events, URL in <meta name="ticketmon-stream">) the page is fetched
     again with the header X-Ticketmon-Fragment: 1, which answers only its live parts
     (elements with data-live and an id), and each is swapped in, keeping the focus; a
     part holding the focus or a comment being written is left alone;
   - j / k move between the incidents of the list. */
(function () {
  "use strict";
  var regions = document.querySelectorAll("[data-live][id]");
  var status = document.getElementById("live-status");
  var meta = document.querySelector('meta[name="ticketmon-stream"]');
  var only = document.querySelector("[data-incident]");
  var busy = false, again = false;

  function inUse(region) {
    var active = document.activeElement;
    if (region.id === "live-act" && active && region.contains(active)) return true;
    return Array.prototype.some.call(region.querySelectorAll("textarea"),
                                     function (t) { return t.value.trim() !== ""; });
  }

  function focusKey(el) {
    if (!el || el === document.body) return null;
    return el.getAttribute("data-key") || el.id || null;
  }

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    var key = focusKey(document.activeElement);
    Array.prototype.forEach.call(regions, function (region) {
      var next = fresh.getElementById(region.id);
      if (next && !inUse(region)) region.innerHTML = next.innerHTML;
    });
    if (key && document.activeElement === document.body) {
      var target = document.querySelector('[data-key="' + key + '"]') || document.getElementById(key);
      if (target) target.focus();
    }
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
        swap(html);
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

  if (regions.length && meta && meta.content && window.EventSource) {
    var source = new EventSource(meta.content, {withCredentials: true});
    source.addEventListener("incident", function (event) {
      var change;
      try { change = JSON.parse(event.data); } catch (e) { return; }
      if (only && String(change.id) !== only.getAttribute("data-incident")) return;
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
