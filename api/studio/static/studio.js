// brandloop studio: the only script besides htmx. No inline script anywhere (the CSP forbids it).
// - live runs: an element with data-events="/chat/jobs/JOB/events" streams the run's trace (SSE)
//   into its list and, when the run ends, loads data-result into data-result-target;
// - keyboard shortcuts on pages that declare them with data-shortcut on buttons or links;
// - focus on the element a page's fragment names when it is made focusable (tabindex="-1": a
//   new thread's heading after Start, the latest turn after Send);
// - the pairwise and review pages submit with keys;
// - a form marked data-show-errors (the gallery's filters) shows the error page's message in
//   its target when the server refuses the request, never the stale, unfiltered results;
// - a form marked data-sync-query takes its fields' values from the address again after Back
//   or Forward (htmx restores the page's markup, in which a select shows what it first did).
(function () {
  "use strict";

  function line(list, text, cls) {
    var li = document.createElement("li");
    li.textContent = text;
    if (cls) li.className = cls;
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  function describe(kind, data) {
    var p = data.payload || {};
    if (kind === "planned" || kind === "decision") return (p.action || kind) + ": " + (p.reason || "");
    if (kind === "attempt_started") return "generating with " + (p.model || "a model") + " (" + (p.attempt || "") + ")";
    if (kind === "attempt_finished") return "generated " + (p.attempt || "") + (p.error ? ": " + p.error : "") + (p.cache_hit ? " (from cache)" : "") + ", $" + Number(p.cost_usd || 0).toFixed(3);
    if (kind === "scored") return "scored: composite " + (p.composite === undefined ? "?" : Number(p.composite).toFixed(2));
    if (kind === "accepted") return "accepted " + (p.accepted || 0) + " of " + (p.wanted || 0);
    if (kind === "done") return "done: " + (p.status || "");
    return kind;
  }

  // A browser keeps 6 HTTP/1.1 connections per host: a thread with six turns waiting held them
  // all with their streams, and navigation, thumbnails and results queued behind them for tens
  // of seconds. Turns run one at a time, so at most MAX_STREAMS stream at once, oldest first;
  // the others wait here (their state as the page was rendered) and start as one ends.
  var MAX_STREAMS = 2, streaming = 0, waiting = [];

  function watch(el) {
    if (el.dataset.watching) return;
    el.dataset.watching = "1";
    waiting.push(el);
    pump();
  }

  function pump() {
    while (streaming < MAX_STREAMS && waiting.length) {
      var el = waiting.shift();
      if (!document.body.contains(el)) continue;  // swapped out meanwhile
      streaming += 1;
      stream(el);
    }
  }

  function stream(el) {
    el.setAttribute("data-streaming", "1");
    var list = el.querySelector("ol, ul");
    var source = new EventSource(el.dataset.events);
    var closed = false;
    function close() {
      source.close();
      if (closed) return;
      closed = true;
      el.removeAttribute("data-streaming");
      streaming -= 1;
      pump();
    }
    var kinds = ["planned", "decision", "attempt_started", "attempt_finished", "scored", "accepted", "done"];
    kinds.forEach(function (kind) {
      source.addEventListener(kind, function (event) {
        var data = JSON.parse(event.data);
        line(list, describe(kind, data), "ev-" + kind);
        if (kind === "accepted" || kind === "done") refresh(el);
      });
    });
    source.addEventListener("state", function (event) {
      var data = JSON.parse(event.data);
      el.setAttribute("data-state", data.state || "");
      var status = el.querySelector("[data-role=state]");
      if (status) status.textContent = (data.state || "").replace("_", " ");
      if (data.state === "awaiting_review") {  // paused for a person: nothing more streams
        close();
        el.setAttribute("data-ended", "1");
        refresh(el);
      }
    });
    source.addEventListener("end", function () {
      close();
      el.setAttribute("data-ended", "1");
      refresh(el);
    });
  }

  function refresh(el) {
    var url = el.dataset.result, target = document.getElementById(el.dataset.resultTarget || "");
    if (!url || !target || !window.htmx) return;
    window.htmx.ajax("GET", url, { target: target, swap: "innerHTML" });
  }

  function init(root) {
    (root || document).querySelectorAll("[data-events]").forEach(watch);
  }

  // A page opened at a fragment that names an element made focusable for it (tabindex="-1":
  // a new thread's heading after Start, the latest turn after Send) takes focus there, so a
  // keyboard or screen-reader user goes on from what they just made, not from <body>.
  function focusFragment() {
    var id = decodeURIComponent(location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (target && target.getAttribute("tabindex") === "-1") target.focus();
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); focusFragment(); });
  document.addEventListener("htmx:afterSettle", function (event) { init(event.target); });

  // htmx swaps no 4xx/5xx response by default: a refused filter left the old results on screen
  // with no word. For a form that asks for it, the error page's message (its role="alert"
  // paragraph) replaces the target's content.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var config = event.detail.requestConfig, status = event.detail.xhr.status;
    var elt = config && config.elt;  // what made the request (detail.elt is the target)
    var form = elt && elt.closest ? elt.closest("form[data-show-errors]") : null;
    if (!form || status < 400) return;
    event.detail.shouldSwap = true;
    event.detail.isError = false;  // shown, not logged as a failure
    event.detail.selectOverride = "[role=alert]";
    event.detail.ignoreTitle = true;  // still the gallery page
  });

  function syncFromQuery(form) {
    var params = new URLSearchParams(location.search);
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.type === "submit" || field.type === "hidden") return;
      var value = params.get(field.name) || "";
      field.value = value;
      if (field.tagName === "SELECT" && field.value !== value) {
        // a value the list no longer offers (a renamed brand): shown as it is in the address
        var option = document.createElement("option");
        option.value = option.textContent = value;
        field.appendChild(option);
        field.value = value;
      }
    });
  }

  function syncForms() {
    document.querySelectorAll("form[data-sync-query]").forEach(syncFromQuery);
  }

  document.addEventListener("htmx:historyRestore", syncForms);
  window.addEventListener("pageshow", function (event) { if (event.persisted) syncForms(); });

  // Keyboard shortcuts: a single key (no modifier, not while typing) clicks the element whose
  // data-shortcut names it. The page lists its shortcuts for people.
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var t = event.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
    var key = event.key.toLowerCase();
    var target = document.querySelector('[data-shortcut="' + key + '"]');
    if (!target) return;
    event.preventDefault();
    if (target.tagName === "TEXTAREA" || target.tagName === "INPUT") { target.focus(); return; }
    target.click();
  });
})();
