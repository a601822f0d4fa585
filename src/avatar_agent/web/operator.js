"use strict";

// Operator dashboard: live calls over the /api/events WebSocket (no polling), a call's
// emotion curve as a uPlot chart with its events, escalation alerts with their context,
// takeover (the avatar says the operator's text), and review of ended calls.
(() => {
  const $ = (id) => document.getElementById(id);
  const config = (() => {
    try { return JSON.parse($("operator-config").textContent); } catch { return {}; }
  })();
  const maxSay = config.maxSayChars || 500;
  const SPARK = 120;
  const MAX_POINTS = 4 * 60 * 30; // half an hour at 4 Hz in the open chart

  // Read-only view of the dashboard's state, for support and the browser tests.
  const view = {
    state: "login", operator: null, wsOpen: false, calls: {}, selected: null,
    chartPoints: 0, chartUpdates: 0, alerts: [], beeps: 0, received: 0, cameraShown: false,
  };
  window.operatorView = view;
  let token = sessionStorage.getItem("operatorToken");
  let ws = null;
  let chart = null;
  let chartData = [[], [], [], []];
  let chartEvents = [];
  let audio = null;

  async function api(method, path, body) {
    const headers = {};
    if (token) headers.Authorization = "Bearer " + token;
    // state-changing requests are always JSON: the server refuses other types (CSRF)
    if (body === undefined && method !== "GET") body = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (resp.status === 401 && path !== "/api/login") { signedOut(); }
    const data = (resp.headers.get("Content-Type") || "").includes("json") ? await resp.json() : null;
    return { status: resp.status, data };
  }

  // --- login ---------------------------------------------------------------------------
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    // A click is a user gesture: the alert sound may only be prepared now.
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    const res = await api("POST", "/api/login",
      { name: $("login-name").value, password: $("login-password").value });
    if (res.status !== 200) {
      $("login-error").textContent = (res.data && res.data.error) || "sign-in failed";
      $("login-error").hidden = false;
      return;
    }
    token = res.data.token;
    sessionStorage.setItem("operatorToken", token);
    $("login-password").value = "";
    signedIn(res.data.name);
  });

  $("logout").addEventListener("click", async () => {
    await api("POST", "/api/logout");
    signedOut();
  });

  function signedOut() {
    token = null;
    sessionStorage.removeItem("operatorToken");
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
    showCamera(null, false);
    view.state = "login";
    document.body.dataset.view = "login";
    $("app").hidden = true;
    $("login").hidden = false;
  }

  async function signedIn(name) {
    view.state = "ready";
    view.operator = name;
    document.body.dataset.view = "app";
    $("whoami").textContent = name;
    // the tuning page is for tuners and admins; the server checks the role again
    api("GET", "/api/me").then((me) => {
      $("tuning-link").hidden = !(me.status === 200 && ["tuner", "admin"].includes(me.data.role));
    });
    $("login").hidden = true;
    $("app").hidden = false;
    $("login-error").hidden = true;
    connect();
    const res = await api("GET", "/api/calls");
    if (res.status === 200) for (const c of res.data.calls) upsertCall(c);
    const open = await api("GET", "/api/escalations");
    if (open.status === 200) for (const e of open.data.escalations) addAlert(e, false);
  }

  // --- live events ---------------------------------------------------------------------
  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    // The login cookie rides on the handshake; the token goes as the first message,
    // never in the URL (URLs end up in access logs).
    ws = new WebSocket(`${proto}//${location.host}/api/events`);
    ws.onopen = () => {
      if (token) ws.send(JSON.stringify({ type: "auth", token }));
      setConn(true);
    };
    ws.onmessage = (m) => { view.received += 1; onEvent(JSON.parse(m.data)); };
    ws.onclose = (ev) => {
      setConn(false);
      if (ev.code === 4001) { signedOut(); return; }
      if (view.state === "ready") setTimeout(connect, 2000);
    };
  }

  function setConn(open) {
    view.wsOpen = open;
    $("conn").dataset.state = open ? "open" : "closed";
    $("conn").textContent = open ? "live" : "offline";
  }

  function onEvent(ev) {
    const c = ev.call_id ? view.calls[ev.call_id] : null;
    if (ev.type === "call" && ev.event === "started") {
      upsertCall({ call_id: ev.call_id, consent_analysis: ev.consent_analysis,
        started_at: Date.now() / 1000, spark: [] });
    } else if (ev.type === "call" && ev.event === "ended") {
      removeCall(ev.call_id, ev.reason);
    } else if (ev.type === "affect" && c) {
      Object.assign(c, { anger_index: ev.anger_index, level: ev.level, emotion: ev.emotion });
      c.spark.push(ev.anger_index);
      if (c.spark.length > SPARK) c.spark.shift();
      renderCard(c);
      if (view.selected === ev.call_id) { addPoint(ev); renderDetailHead(c); }
    } else if (ev.type === "event" && view.selected === ev.call_id) {
      addEvent(ev);
    } else if (ev.type === "speech" && ev.event === "start" && view.selected === ev.call_id) {
      addLine($("transcript"), ev.t, ev.text, "avatar");
    } else if (ev.type === "transcript" && view.selected === ev.call_id) {
      addLine($("transcript"), ev.t_start, ev.text, "customer");  // the customer's words
    } else if (ev.type === "takeover" && view.selected === ev.call_id) {
      addEvent({ t: ev.t, kind: "takeover", operator: ev.operator });
    } else if (ev.type === "escalation") {
      addAlert(ev, true);
      if (c) { c.open_escalation = ev; renderCard(c); }
      if (view.selected === ev.call_id) addEvent({ ...ev, kind: "escalation" });
    } else if (ev.type === "escalation_ack") {
      removeAlert(ev.id, ev.acknowledged_by);
      if (c) { c.open_escalation = null; renderCard(c); }
    }
  }

  // --- call list -----------------------------------------------------------------------
  function upsertCall(summary) {
    const c = view.calls[summary.call_id] || { spark: [] };
    Object.assign(c, summary);
    c.spark = summary.spark || c.spark;
    view.calls[c.call_id] = c;
    if (!c.el) {
      c.el = document.createElement("li");
      c.el.className = "call";
      c.el.dataset.callId = c.call_id;
      c.el.innerHTML = `<span><code></code> <span class="badge"></span></span>
        <span class="anger"></span><span class="muted meta"></span>
        <span class="muted dur"></span><canvas width="280" height="32"></canvas>`;
      c.el.querySelector("code").textContent = c.call_id.slice(0, 8);
      c.el.addEventListener("click", () => openCall(c.call_id));
      $("calls").prepend(c.el);
    }
    renderCard(c);
    updateCount();
  }

  function removeCall(id, reason) {
    const c = view.calls[id];
    if (!c) return;
    c.el.remove();
    delete view.calls[id];
    updateCount();
    if (view.selected === id) {
      $("detail-state").textContent = `ended (${reason || "ended"})`;
      showCamera(id, false);
      $("say-send").disabled = true;
      $("end-call").disabled = true;
    }
  }

  function updateCount() {
    const n = Object.keys(view.calls).length;
    $("call-count").textContent = n;
    $("no-calls").hidden = n > 0;
  }

  function renderCard(c) {
    const badge = c.el.querySelector(".badge");
    badge.textContent = c.consent_analysis ? (c.level || "…") : "no analysis";
    badge.dataset.level = c.level || "";
    c.el.querySelector(".anger").textContent =
      c.anger_index == null ? "" : `anger ${Math.round(c.anger_index)}`;
    c.el.querySelector(".meta").textContent = c.consent_analysis ? "consented" : "no consent";
    c.el.classList.toggle("escalated", !!c.open_escalation);
    c.el.classList.toggle("selected", view.selected === c.call_id);
    drawSpark(c.el.querySelector("canvas"), c.spark);
  }

  function drawSpark(canvas, values) {
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, canvas.width, canvas.height);
    if (values.length < 2) return;
    g.strokeStyle = "#dc2626";
    g.beginPath();
    values.forEach((v, i) => {
      const x = (i / (SPARK - 1)) * canvas.width;
      const y = canvas.height - (v / 100) * canvas.height;
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  }

  setInterval(() => {
    const now = Date.now() / 1000;
    for (const c of Object.values(view.calls)) {
      const s = Math.max(0, Math.round(now - c.started_at));
      c.el.querySelector(".dur").textContent =
        `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    }
  }, 1000);

  // --- one call ------------------------------------------------------------------------
  // events: a function giving the events to mark, read at every redraw
  function makeChart(el, width, events) {
    const markers = { hooks: { draw: [(u) => drawMarkers(u, events())] } };
    return new uPlot({
      width, height: 260, plugins: [markers],
      scales: { x: { time: false }, idx: { range: [0, 100] }, av: { range: [-1, 1] } },
      axes: [{ label: "seconds" }, { scale: "idx", label: "anger index" },
        { scale: "av", side: 1, label: "arousal / valence", grid: { show: false } }],
      series: [{}, { label: "anger index", scale: "idx", stroke: "#dc2626", width: 2 },
        { label: "arousal", scale: "av", stroke: "#0891b2" },
        { label: "valence", scale: "av", stroke: "#16a34a" }],
    }, [[], [], [], []], el);
  }

  const MARK = { level: "#b45309", micro_expression: "#7c3aed", escalation: "#dc2626",
    takeover: "#2563eb", human_request: "#db2777" };

  function drawMarkers(u, events) {
    const ctx = u.ctx;
    ctx.save();
    for (const ev of events) {
      if (!MARK[ev.kind]) continue;
      const x = u.valToPos(ev.t, "x", true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
      ctx.strokeStyle = MARK[ev.kind];
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
    }
    ctx.restore();
  }

  async function openCall(id) {
    view.selected = id;
    for (const c of Object.values(view.calls)) renderCard(c);
    const res = await api("GET", `/api/calls/${id}/timeline`);
    if (res.status !== 200 || view.selected !== id) return;
    const tl = res.data;
    $("detail").hidden = false;
    $("detail-id").textContent = id;
    $("detail-state").textContent = tl.call.live ? "live" : `ended (${tl.call.end_reason})`;
    $("say-send").disabled = !tl.call.live;
    $("end-call").disabled = !tl.call.live;
    $("no-affect").hidden = tl.call.consent_analysis;
    showCamera(id, tl.call.live && tl.call.consent_analysis);
    chartData = [[], [], [], []];
    chartEvents = [];
    $("events").replaceChildren();
    $("transcript").replaceChildren();
    for (const p of tl.points) pushPoint(p);
    for (const e of tl.events) if (e.kind !== "caption") addEvent(e);
    for (const l of tl.transcript) addLine($("transcript"), l.t, l.text, l.who);
    if (!chart) chart = makeChart($("chart"), $("chart").clientWidth || 800, () => chartEvents);
    chart.setData(chartData);
    view.chartPoints = chartData[0].length;
    renderDetailHead(view.calls[id] || {});
  }

  // The customer's camera, live, only where config allows it and the customer agreed.
  // The image stream carries the session cookie; clearing src ends it on the server.
  function showCamera(id, allowed) {
    const img = $("customer-video");
    const on = Boolean(config.showCustomerVideo && allowed && id);
    if (on) img.src = `/api/calls/${id}/video.mjpeg`;
    else img.removeAttribute("src");
    $("camera").hidden = !on;
    view.cameraShown = on;
    $("camera-note").textContent = !config.showCustomerVideo
      ? "The customer's camera image is not shown on this dashboard."
      : on ? "" : "The customer's camera is shown only for customers who agreed.";
  }

  function renderDetailHead(c) {
    const badge = $("detail-level");
    badge.textContent = c.level || (c.consent_analysis === false ? "no analysis" : "…");
    badge.dataset.level = c.level || "";
    $("detail-anger").textContent = c.anger_index == null ? "" : `anger ${Math.round(c.anger_index)}`;
    $("detail-consent").textContent = c.consent_analysis ? "consented to analysis" : "";
  }

  function pushPoint(p) {
    chartData[0].push(p.t); chartData[1].push(p.anger_index);
    chartData[2].push(p.arousal); chartData[3].push(p.valence);
    if (chartData[0].length > MAX_POINTS) for (const s of chartData) s.shift();
  }

  function addPoint(p) {
    pushPoint(p);
    if (chart) {
      chart.setData(chartData);
      view.chartUpdates += 1;
      view.chartPoints = chartData[0].length;
    }
  }

  function describe(ev) {
    if (ev.kind === "level") return `level → ${ev.level} (anger ${Math.round(ev.anger_index)})`;
    // live events and newer timelines name it `expression`; older stored ones `type`
    if (ev.kind === "micro_expression") return `micro-expression: ${ev.expression ?? ev.type}`;
    if (ev.kind === "escalation") return `escalation: ${ev.detail || ev.reason}`;
    if (ev.kind === "takeover") return `takeover by ${ev.operator}`;
    if (ev.kind === "human_request") return "customer asked for a person";
    return ev.kind;
  }

  function addEvent(ev) {
    chartEvents.push(ev);
    addLine($("events"), ev.t, describe(ev), ev.kind);
    if (chart) chart.redraw(false);
  }

  function addLine(list, t, text, cls) {
    const li = document.createElement("li");
    li.className = cls || "";
    const who = cls === "operator" ? "(operator) " : cls === "customer" ? "Customer: " : "";
    li.textContent = `${Number(t).toFixed(1)} s  ${who}${text}`;
    list.append(li);
    list.scrollTop = list.scrollHeight;
  }

  $("say-text").addEventListener("input", () => {
    $("say-count").textContent = `${$("say-text").value.length} / ${maxSay}`;
  });
  $("say-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const id = view.selected;
    const res = await api("POST", `/api/calls/${id}/say`, { text: $("say-text").value });
    $("say-status").textContent = res.status === 202
      ? "The avatar will say it." : (res.data && res.data.error) || `error ${res.status}`;
    if (res.status === 202) $("say-text").value = "";
  });
  $("end-call").addEventListener("click", async () => {
    if (view.selected) await api("POST", `/api/calls/${view.selected}/end`);
  });

  // --- escalations ---------------------------------------------------------------------
  function addAlert(esc, loud) {
    if (view.alerts.some((a) => a.id === esc.id && esc.id != null)) return;
    const div = document.createElement("div");
    div.className = "alert";
    div.dataset.escalationId = esc.id;
    div.dataset.callId = esc.call_id;
    div.innerHTML = `<strong>Escalation</strong><span class="grow"></span>
      <button class="btn open" type="button">Open call</button>
      <button class="btn primary ack" type="button">Acknowledge</button>`;
    div.querySelector(".grow").textContent =
      `call ${esc.call_id.slice(0, 8)}: ${esc.detail || esc.reason}`;
    div.querySelector(".open").addEventListener("click", () => openCall(esc.call_id));
    div.querySelector(".ack").addEventListener("click", async () => {
      const res = await api("POST", `/api/escalations/${esc.id}/ack`);
      if (res.status === 200) { removeAlert(esc.id, res.data.acknowledged_by); openCall(esc.call_id); }
    });
    $("alerts").append(div);
    view.alerts.push({ id: esc.id, call_id: esc.call_id, reason: esc.reason, el: div,
      context: esc.context || null });
    if (loud) beep();
  }

  function removeAlert(id, by) {
    const i = view.alerts.findIndex((a) => a.id === id);
    if (i < 0) return;
    view.alerts[i].el.remove();
    view.alerts.splice(i, 1);
    view.lastAck = { id, by };
  }

  function beep() {
    view.beeps += 1;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.2;
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.3);
    } catch (e) {
      console.warn("alert sound unavailable", e);
    }
  }

  // The review view (operator-review.js) reuses these.
  window.operatorShared = { api, makeChart, describe, addLine, view };

  // A session cookie from an earlier sign-in is enough; the page asks who we are.
  api("GET", "/api/me").then((res) => {
    if (res.status === 200) signedIn(res.data.name); else signedOut();
  });
})();
