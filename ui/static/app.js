// spool dashboard: live updates over the dashboard's own event stream.
// No framework: the pages work without this script, which only keeps
// them fresh and shows or hides the create form's option fieldsets.
(function () {
  "use strict";
  var prefix = document.body.getAttribute("data-prefix") || "";

  function setState(text) {
    var el = document.getElementById("live-state");
    if (el) el.textContent = text;
  }

  function stream(query, onEvent) {
    if (!window.EventSource) return;
    var es = new EventSource(prefix + "/events" + query);
    // Close the stream as the page goes: a browser holds at most six
    // connections to a host over HTTP/1.1, and pages kept for the back
    // button would otherwise keep theirs open and stall the next page.
    window.addEventListener("pagehide", function () { es.close(); });
    window.addEventListener("pageshow", function (e) { if (e.persisted) location.reload(); });
    es.onopen = function () { setState("Live: updates appear as they happen."); };
    es.onerror = function () { setState("Live updates lost; reconnecting…"); };
    es.onmessage = function (m) {
      var ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      onEvent(ev);
    };
  }

  function setStatus(scope, status) {
    var s = scope.querySelector(".status");
    if (!s || s.getAttribute("data-status") === status) return;
    s.className = "status s-" + status;
    s.setAttribute("data-status", status);
    s.textContent = status;
  }

  function setProgress(scope, pct) {
    var p = scope.querySelector("progress");
    if (p) { p.value = pct; p.textContent = pct + "%"; }
    var t = scope.querySelector(".pct");
    if (t) t.textContent = pct + "%";
  }

  // The task list: move rows' statuses and bars; insert new tasks that
  // match the filters at the top of the first page.
  function list(table) {
    var body = table.tBodies[0];
    var f = {};
    ["status", "kind", "ref", "folder", "parent"].forEach(function (k) { f[k] = table.getAttribute("data-" + k) || ""; });
    function matches(t) {
      return (!f.status || f.status === t.status) && (!f.kind || f.kind === t.kind) &&
        (!f.ref || f.ref === t.ref) && (!f.folder || f.folder === t.folder) && (!f.parent || f.parent === t.parent_id);
    }
    var c = table.getAttribute("data-cursor");
    stream(c ? "?after=" + encodeURIComponent(c) : "", function (ev) {
      var t = ev.task;
      var row = document.getElementById("row-" + t.id);
      if (row) {
        setStatus(row, t.status);
        setProgress(row, t.progress);
        return;
      }
      if (ev.type !== "task.created" || table.getAttribute("data-live") !== "insert" || !matches(t)) return;
      fetch(prefix + "/tasks/" + encodeURIComponent(t.id) + "/row", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) {
          if (!html || document.getElementById("row-" + t.id)) return;
          var tpl = document.createElement("template");
          tpl.innerHTML = html.trim();
          var tr = tpl.content.firstElementChild;
          // Rows are newest first, and ids sort by creation.
          var before = null;
          for (var i = 0; i < body.rows.length; i++) {
            if ((body.rows[i].getAttribute("data-id") || "") < t.id) { before = body.rows[i]; break; }
          }
          body.insertBefore(tr, before);
          var empty = document.getElementById("empty");
          if (empty) empty.remove();
        });
    });
  }

  // The task page: progress in place; anything else re-renders the
  // sections that changed.
  function task(el) {
    var id = el.getAttribute("data-id");
    var pending = null;
    function refresh() {
      pending = null;
      fetch(location.pathname + "?part=live", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) {
          if (!html) return;
          var tpl = document.createElement("template");
          tpl.innerHTML = html;
          var fresh = Array.prototype.slice.call(tpl.content.querySelectorAll("section[id]"));
          var old = Array.prototype.slice.call(el.querySelectorAll("section[id]"));
          var same = fresh.length === old.length && fresh.every(function (s, i) { return s.id === old[i].id; });
          if (!same) {
            old.forEach(function (s) { s.remove(); });
            fresh.forEach(function (s) { el.appendChild(s); });
            return;
          }
          fresh.forEach(function (s, i) {
            if (s.outerHTML !== old[i].outerHTML) old[i].replaceWith(s);
          });
        });
    }
    var c = el.getAttribute("data-cursor");
    stream("?task=" + encodeURIComponent(id) + (c ? "&after=" + encodeURIComponent(c) : ""), function (ev) {
      if (ev.type === "task.progress") {
        if (ev.task.id === id) {
          var sum = document.getElementById("sec-summary");
          if (sum) setProgress(sum, ev.task.progress);
          return;
        }
      }
      if (!pending) pending = setTimeout(refresh, 250);
    });
  }

  // The overview: fetch the page again at most every two seconds while
  // events come, and swap its sections.
  function overview(el) {
    var pending = null;
    function refresh() {
      fetch(location.pathname, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.querySelectorAll("#overview > section");
          var old = el.querySelectorAll(":scope > section");
          if (fresh.length !== old.length) return;
          fresh.forEach(function (s, i) {
            if (s.outerHTML !== old[i].outerHTML) old[i].replaceWith(document.importNode(s, true));
          });
        })
        .finally(function () { pending = null; });
    }
    var c = el.getAttribute("data-cursor");
    stream(c ? "?after=" + encodeURIComponent(c) : "", function (ev) {
      if (ev.type === "task.progress" || pending) return;
      pending = setTimeout(refresh, 2000);
    });
  }

  // The create form: show the chosen kind's options only.
  function create(form) {
    var sel = form.querySelector("#kind");
    function show() {
      form.querySelectorAll(".kindopts").forEach(function (fs) {
        fs.hidden = fs.getAttribute("data-kind") !== sel.value;
      });
    }
    sel.addEventListener("change", show);
    show();
  }

  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  var t = document.getElementById("tasks");
  if (t) list(t);
  var p = document.getElementById("task");
  if (p) task(p);
  var o = document.getElementById("overview");
  if (o) overview(o);
  var c = document.querySelector("form.create");
  if (c) create(c);
})();
