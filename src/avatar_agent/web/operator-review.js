"use strict";

// Review of ended calls on the operator dashboard: the stored curve as a chart, the
// server's matplotlib plot, events, transcript and CSV / JSON export links.
(() => {
  const $ = (id) => document.getElementById(id);
  const { api, makeChart, describe, addLine, view } = window.operatorShared;

  let reviewChart = null;
  let reviewEvents = [];
  function showTab(live) {
    $("live-view").hidden = !live;
    $("review-view").hidden = live;
    $("tab-live").classList.toggle("active", live);
    $("tab-review").classList.toggle("active", !live);
    if (!live) loadHistory();
  }
  $("tab-live").addEventListener("click", () => showTab(true));
  $("tab-review").addEventListener("click", () => showTab(false));

  async function loadHistory() {
    const res = await api("GET", "/api/history");
    if (res.status !== 200) return;
    const list = $("history");
    list.replaceChildren();
    for (const c of res.data.calls) {
      const li = document.createElement("li");
      li.className = "call";
      li.dataset.callId = c.call_id;
      li.textContent = `${c.call_id.slice(0, 8)} · ${new Date(c.started_at).toLocaleString()}`
        + ` · ${c.end_reason}${c.consent_analysis ? "" : " · no consent"}`;
      li.addEventListener("click", () => openReview(c.call_id));
      list.append(li);
    }
  }

  async function openReview(id) {
    const res = await api("GET", `/api/calls/${id}/timeline`);
    if (res.status !== 200) return;
    const tl = res.data;
    $("review").hidden = false;
    $("review-id").textContent = id;
    $("review-meta").textContent =
      `${tl.call.end_reason || "live"} · ${tl.points.length} points · ${tl.events.length} events`;
    $("export-csv").href = `/api/calls/${id}/export.csv`;
    $("export-json").href = `/api/calls/${id}/export.json`;
    $("review-plot").src = `/api/calls/${id}/plot.png`;
    reviewEvents = tl.events;
    if (!reviewChart) {
      reviewChart = makeChart($("review-chart"), $("review-chart").clientWidth || 800,
        () => reviewEvents);
    }
    reviewChart.setData([tl.points.map((p) => p.t), tl.points.map((p) => p.anger_index),
      tl.points.map((p) => p.arousal), tl.points.map((p) => p.valence)]);
    $("review-events").replaceChildren();
    $("review-transcript").replaceChildren();
    for (const e of tl.events) {
      if (e.kind !== "caption") addLine($("review-events"), e.t, describe(e), e.kind);
    }
    for (const l of tl.transcript) addLine($("review-transcript"), l.t, l.text, l.who);
    view.review = { id, points: tl.points.length };
  }
})();
