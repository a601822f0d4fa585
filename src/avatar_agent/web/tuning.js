// The tuning page: sliders from the persona schema, a live preview rendered by the
// server, save / undo / history. Every value is checked again on the server.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const st = { persona: null, groups: [], changes: new Map(), draftTimer: null };

  async function api(method, path, body) {
    // Every POST carries a JSON body, even an empty one: the server refuses other
    // cookie-authenticated POSTs as possibly cross-site.
    if (method !== "GET" && body === undefined) body = {};
    const resp = await fetch(path, {
      method, credentials: "same-origin",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    return { status: resp.status, ok: resp.ok, data };
  }

  function show(which) {
    $("login").hidden = which !== "login";
    $("app").hidden = which !== "app";
    $("forbidden").hidden = which !== "forbidden";
    document.body.dataset.view = which;
  }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const res = await api("POST", "/api/login",
      { name: $("login-name").value, password: $("login-password").value });
    $("login-password").value = "";
    if (!res.ok) {
      $("login-error").textContent = (res.data && res.data.error) || "sign-in failed";
      $("login-error").hidden = false;
      return;
    }
    $("login-error").hidden = true;
    start();
  });

  function option(value, text) {
    const o = document.createElement("option");
    o.value = value; o.textContent = text || value;
    return o;
  }

  async function start() {
    const res = await api("GET", "/api/tuning/personas");
    if (res.status === 401) { show("login"); return; }
    if (res.status === 403) { show("forbidden"); return; }
    if (!res.ok) { show("login"); return; }
    show("app");
    $("whoami").textContent = `${res.data.operator} (${res.data.role})`;
    const sel = $("persona-select");
    sel.replaceChildren();
    for (const p of res.data.personas) {
      sel.append(option(p.name, p.name + (p.active ? " (live calls use this)" : "")
        + (p.valid ? "" : " (invalid)")));
    }
    const active = res.data.personas.find((p) => p.active) || res.data.personas[0];
    if (active) { sel.value = active.name; await openPersona(active.name); }
  }

  $("persona-select").addEventListener("change", (ev) => openPersona(ev.target.value));

  async function openPersona(name) {
    const res = await api("GET", `/api/tuning/personas/${encodeURIComponent(name)}`);
    if (!res.ok) { setError(res.data); return; }
    st.persona = name;
    st.groups = res.data.groups;
    st.changes.clear();
    $("persona-desc").textContent = res.data.description;
    fill($("level-select"), res.data.levels);
    fill($("state-select"), res.data.states);
    renderGroups();
    updatePending();
    restartPreview();
    loadHistory();
  }

  function fill(sel, values) {
    const keep = sel.value;
    sel.replaceChildren(...values.map((v) => option(v)));
    if (values.includes(keep)) sel.value = keep;
  }

  function fmt(v) { return v === null || v === undefined ? "" : String(Math.round(v * 1000) / 1000); }

  function renderGroups() {
    const box = $("groups");
    box.replaceChildren();
    for (const g of st.groups) {
      const card = document.createElement("section");
      card.className = "group card";
      card.dataset.path = g.path;
      const h = document.createElement("h3");
      h.textContent = g.title + " ";
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = g.kind === "amount" ? "(added to the state's values)" : "";
      h.append(kind);
      card.append(h);
      for (const c of g.controls) card.append(control(g, c));
      box.append(card);
    }
  }

  function control(group, c) {
    const path = `${group.path}.${c.cue}`;
    const row = document.createElement("div");
    row.className = "control" + (c.value === null ? " unset" : "");
    const name = document.createElement("label");
    name.className = "name";
    name.textContent = c.cue;
    const input = document.createElement("input");
    input.type = "range";
    input.min = c.min; input.max = c.max; input.step = c.step;
    // An unset cue sits where the avatar actually has it (a state inherits idle's).
    const inherited = c.inherited !== null && c.inherited !== undefined;
    input.value = c.value !== null ? c.value
      : inherited ? c.inherited : (group.kind === "absolute" ? c.min : 0);
    input.dataset.path = path;
    input.id = "ctl-" + path.replace(/\./g, "-");
    name.htmlFor = input.id;
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = c.value !== null ? fmt(c.value)
      : inherited ? `${fmt(c.inherited)} (inherited)` : "not set";
    const unit = document.createElement("span");
    unit.className = "unit";
    unit.textContent = `${c.unit} [${c.min} .. ${c.max}]`;
    input.addEventListener("input", () => {
      const v = Number(input.value);
      st.changes.set(path, v);
      value.textContent = fmt(v);
      row.classList.remove("unset");
      row.classList.add("changed");
      updatePending();
      scheduleDraft();
    });
    row.append(name, input, value, unit);
    return row;
  }

  function changeList() {
    return [...st.changes].map(([path, value]) => ({ path, value }));
  }

  function updatePending() {
    const n = st.changes.size;
    $("pending").textContent = n ? `${n} unsaved change${n > 1 ? "s" : ""}` : "";
    $("save").disabled = n === 0;
    $("revert").disabled = n === 0;
  }

  function scheduleDraft() {
    clearTimeout(st.draftTimer);
    st.draftTimer = setTimeout(sendDraft, 120);
  }

  async function sendDraft() {
    const res = await api("POST", `/api/tuning/personas/${encodeURIComponent(st.persona)}/draft`,
      { changes: changeList() });
    if (!res.ok) setError(res.data); else clearError();
    if (!$("sheet").hidden) loadSheet();
  }

  function setError(data) {
    $("save-error").textContent = (data && data.error) || "refused";
    $("save-error").hidden = false;
  }
  function clearError() { $("save-error").hidden = true; }

  function restartPreview() {
    if (!st.persona) return;
    stopSound();
    const q = new URLSearchParams({ view: $("view-select").value, level: $("level-select").value,
      state: $("state-select").value });
    // A fresh URL opens a fresh stream; the old one closes with the image's source.
    $("preview").src = `/api/tuning/personas/${encodeURIComponent(st.persona)}/preview.mjpeg?${q}`;
  }
  for (const id of ["view-select", "level-select", "state-select"]) {
    $(id).addEventListener("change", restartPreview);
  }

  // --- sound: the stream's mouth loops the sample line from its first frame; the WAV is
  // one loop long, so looping it from that frame's arrival keeps the two together
  // (within the time a frame takes to arrive and the audio output's latency).
  const sound = { ctx: null, buffer: null, source: null };

  function stopSound() {
    if (sound.source) { sound.source.stop(); sound.source = null; }
  }

  $("preview").addEventListener("load", () => {
    if (!$("sound").checked || !sound.buffer || sound.source) return;
    sound.source = sound.ctx.createBufferSource();
    sound.source.buffer = sound.buffer;
    sound.source.loop = true;
    sound.source.connect(sound.ctx.destination);
    sound.source.start();
  });

  $("sound").addEventListener("change", async () => {
    if (!$("sound").checked) { stopSound(); return; }
    sound.ctx = sound.ctx || new AudioContext();
    await sound.ctx.resume();
    if (!sound.buffer) {
      const resp = await fetch("/api/tuning/sample.wav", { credentials: "same-origin" });
      if (!resp.ok) { $("sound").checked = false; setError({ error: "no sample line: this server has no voice" }); return; }
      sound.buffer = await sound.ctx.decodeAudioData(await resp.arrayBuffer());
    }
    restartPreview();  // the sound starts with the new stream's first frame
  });

  $("save").addEventListener("click", async () => {
    const res = await api("POST", `/api/tuning/personas/${encodeURIComponent(st.persona)}/save`,
      { changes: changeList() });
    if (!res.ok) { setError(res.data); return; }
    clearError();
    await reopen();
    $("status").textContent = `Saved; live calls take it within a second (version ${res.data.version.id}).`;
  });

  $("revert").addEventListener("click", async () => {
    st.changes.clear();
    await sendDraft();
    await reopen();
  });

  $("undo").addEventListener("click", async () => {
    const res = await api("POST", `/api/tuning/personas/${encodeURIComponent(st.persona)}/undo`);
    if (!res.ok) { setError(res.data); return; }
    clearError();
    await reopen();
    $("status").textContent = `Undid save ${res.data.undone}.`;
  });

  async function reopen() {
    const res = await api("GET", `/api/tuning/personas/${encodeURIComponent(st.persona)}`);
    if (!res.ok) { setError(res.data); return; }
    st.groups = res.data.groups;
    st.changes.clear();
    renderGroups();
    updatePending();
    await loadHistory();
  }

  function loadSheet() {
    $("sheet").src = `/api/tuning/personas/${encodeURIComponent(st.persona)}/sheet.png?t=${Date.now()}`;
    $("sheet").hidden = false;
  }
  $("sheet-btn").addEventListener("click", loadSheet);

  async function loadHistory() {
    const res = await api("GET", `/api/tuning/personas/${encodeURIComponent(st.persona)}/history`);
    const list = $("history");
    list.replaceChildren();
    if (!res.ok) return;
    for (const v of res.data.versions) {
      const li = document.createElement("li");
      const what = v.action === "undo" ? `undid save ${v.changes[0].undoes}`
        : v.changes.map((c) => `${c.path} = ${fmt(c.value)}`).join(", ");
      li.textContent = `${new Date(v.saved_at).toLocaleString()} · ${v.operator} · ${what}`;
      if (v.undone) li.className = "undone";
      list.append(li);
    }
  }

  start();
})();
