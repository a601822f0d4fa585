"use strict";

// Customer side of a video call with the virtual assistant: consent, WebRTC offer/answer
// against the server's JSON API, remote avatar playback and live captions.
(() => {
  // aiortc does not trickle ICE, so the offer must carry every candidate; host candidates
  // are gathered almost instantly, and the timeout only guards against a stuck gatherer.
  const ICE_GATHER_TIMEOUT_MS = 2000;
  const CAPTION_LINGER_MS = 1800;
  const REQUEST_TIMEOUT_MS = 15000;
  const HANGUP_TIMEOUT_MS = 4000;
  const TRANSCRIPT_MAX = 60;
  // Lets the server notice a vanished page (closed lid, lost network) well before ICE
  // consent expires; the server's timeout is several of these intervals.
  const HEARTBEAT_MS = 2000;
  const CAMERA = { width: 640, height: 480 };

  const $ = (id) => document.getElementById(id);
  const els = {
    form: $("consent-form"),
    start: $("start"),
    hint: $("consent-hint"),
    hangup: $("hangup"),
    human: $("human"),
    status: $("status"),
    frame: document.querySelector(".video-frame"),
    avatar: $("avatar"),
    selfView: $("self-view"),
    unmute: $("unmute"),
    captions: $("captions"),
    transcript: $("transcript"),
    transcriptEmpty: $("transcript-empty"),
    title: $("disclosure-title"),
    placeholderText: document.querySelector("#placeholder p"),
  };

  const config = readConfig();
  // Said before the choice, so "Yes" covers being seen whenever the server shows it.
  $("operator-camera").hidden = !config.operatorMaySeeCamera;
  // Public, read-only view of the call for support staff debugging and browser tests.
  const call = { callId: null, state: "idle", captions: [] };
  window.avatarCall = call;

  // One object per call attempt, so late async results of an abandoned attempt are ignored.
  let current = null;
  let captionSeq = 0;
  let captionTimer = null;

  function readConfig() {
    const fallback = { iceServers: [], greeting: "", operatorMaySeeCamera: false };
    const node = $("agent-config");
    try {
      const parsed = JSON.parse(node ? node.textContent : "");
      return parsed && typeof parsed === "object" ? { ...fallback, ...parsed } : fallback;
    } catch {
      // The placeholder was not substituted, e.g. the file was opened straight from disk.
      return fallback;
    }
  }

  function consentChoice() {
    const checked = els.form.querySelector('input[name="consent"]:checked');
    return checked ? checked.value : null;
  }

  function isActive() {
    return call.state === "connecting" || call.state === "in-call";
  }

  const setStatus = (message) => { els.status.textContent = message; };

  function setState(state, message) {
    call.state = state;
    els.status.dataset.state = state;
    els.frame.dataset.state = state;
    document.body.dataset.callState = state;
    if (message) setStatus(message);
    refreshControls();
  }

  function refreshControls() {
    const active = isActive();
    const chosen = consentChoice() !== null;
    els.start.disabled = active || !chosen;
    els.hangup.disabled = !(active && current && current.pc);
    els.human.disabled = !(call.state === "in-call" && current && current.channel
      && !current.askedForHuman);
    for (const input of els.form.querySelectorAll('input[name="consent"]')) {
      input.disabled = active;
    }
    els.hint.hidden = chosen || active;
    els.title.textContent = active
      ? "You are talking to an AI agent"
      : "You are about to talk to an AI agent";
    const again = call.state === "ended" || call.state === "error";
    els.start.lastChild.textContent = again ? "Start a new call" : "Start call";
  }

  async function openLocalMedia() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return null;
    // Degrade step by step: a customer without a camera (or who refuses it) can still talk.
    const tries = [{ video: CAMERA, audio: true }, { audio: true }, { video: CAMERA }];
    for (const constraints of tries) {
      try {
        return await navigator.mediaDevices.getUserMedia(constraints);
      } catch (err) {
        console.info("getUserMedia failed for", constraints, err && err.name);
      }
    }
    return null;
  }

  function describeMedia(stream) {
    const kinds = new Set(stream ? stream.getTracks().map((t) => t.kind) : []);
    if (kinds.has("audio") && kinds.has("video")) return "";
    if (kinds.has("audio")) return " (without your camera)";
    if (kinds.has("video")) return " (without your microphone, so the assistant cannot hear you)";
    return " (without camera or microphone)";
  }

  function addTransceivers(pc, stream) {
    for (const kind of ["audio", "video"]) {
      const track = stream ? stream.getTracks().find((t) => t.kind === kind) : undefined;
      if (track) {
        pc.addTransceiver(track, { direction: "sendrecv", streams: [stream] });
      } else {
        // Still negotiate the kind so the assistant's audio/video comes back to us.
        pc.addTransceiver(kind, { direction: "recvonly" });
      }
    }
  }

  function waitForIceGathering(pc, timeoutMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      const check = () => pc.iceGatheringState === "complete" && done();
      const timer = setTimeout(done, timeoutMs);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  async function requestJson(method, url, body, timeoutMs) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      const res = await fetch(url, {
        method,
        headers: body ? { "Content-Type": "application/json" } : {},
        body: body ? JSON.stringify(body) : undefined,
        signal: abort.signal,
      });
      const data = await res.json().catch(() => null);
      if (!res.ok) {
        const failure = new Error(data && data.error ? data.error : `server answered ${res.status}`);
        failure.status = res.status;
        failure.retryAfter = Number(res.headers.get("Retry-After")) || null;
        throw failure;
      }
      return data || {};
    } catch (err) {
      if (err && err.name === "AbortError") throw new Error("the server did not answer in time");
      if (err instanceof TypeError) throw new Error("the server could not be reached");
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  function wirePeer(attempt) {
    const { pc } = attempt;
    const remote = new MediaStream();
    pc.addEventListener("track", (ev) => {
      remote.addTrack(ev.track);
      if (els.avatar.srcObject !== remote) els.avatar.srcObject = remote;
      playAvatar();
    });
    pc.addEventListener("connectionstatechange", () => {
      if (attempt !== current || attempt.over) return;
      const state = pc.connectionState;
      if (state === "connected") {
        attempt.connected = true;
        setState("in-call", "In call with the virtual assistant" + attempt.mediaNote + ".");
        playAvatar();
      } else if (state === "disconnected" && call.state === "in-call") {
        setStatus("The connection is unstable, trying to recover…");
      } else if (state === "failed" || state === "closed") {
        if (attempt.connected) {
          finish(attempt, "ended", "Call ended: the connection was lost.");
        } else {
          finish(attempt, "error", "Could not connect to the assistant. Please try again.");
        }
      }
    });
  }

  async function startCall() {
    const choice = consentChoice();
    if (!choice || isActive()) return;
    const attempt = { pc: null, stream: null, callId: null, over: false, connected: false,
                      mediaNote: "", heartbeat: null };
    current = attempt;
    call.callId = null;
    call.captions = [];
    clearTranscript();
    setState("connecting", "Asking for your camera and microphone…");
    try {
      attempt.stream = await openLocalMedia();
      if (attempt.over) return stopStream(attempt.stream);
      attempt.mediaNote = describeMedia(attempt.stream);
      showSelfView(attempt.stream);

      const pc = new RTCPeerConnection({ iceServers: config.iceServers || [] });
      attempt.pc = pc;
      wirePeer(attempt);
      const channel = pc.createDataChannel("agent");
      attempt.channel = channel;
      channel.addEventListener("message", (ev) => {
        if (attempt === current) handleMessage(ev.data);
      });
      channel.addEventListener("open", () => startHeartbeat(attempt, channel));
      addTransceivers(pc, attempt.stream);
      setState("connecting", "Connecting to the assistant" + attempt.mediaNote + "…");

      await pc.setLocalDescription(await pc.createOffer());
      await waitForIceGathering(pc, ICE_GATHER_TIMEOUT_MS);
      if (attempt.over) return;

      // A single-use join token, asked for just before the offer that spends it.
      const joined = await requestJson("POST", "/api/join", {}, REQUEST_TIMEOUT_MS);
      if (attempt.over) return;
      const answer = await requestJson("POST", "/api/calls", {
        sdp: pc.localDescription.sdp,
        type: pc.localDescription.type,
        consent: { analysis: choice === "yes" },
        join_token: joined.join_token,
      }, REQUEST_TIMEOUT_MS);
      if (!answer.call_id || !answer.sdp) throw new Error("the server sent an incomplete answer");
      attempt.callId = answer.call_id;
      if (attempt.over) {
        // Hung up while the offer was in flight: the server already has the call.
        deleteCall(answer.call_id);
        return;
      }
      call.callId = answer.call_id;
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    } catch (err) {
      if (attempt.over) return;
      const id = attempt.callId;
      if (err && err.status === 503) {
        // Every line is taken: say so plainly and when to try, not that something broke.
        const wait = err.retryAfter ? ` in about ${Math.max(1, Math.round(err.retryAfter))} seconds` : " in a moment";
        finish(attempt, "busy", `All our lines are busy right now. Please try again${wait}.`);
        return;
      }
      const message = err && err.message ? err.message : String(err);
      finish(attempt, "error", `Could not start the call: ${message}`);
      if (id) deleteCall(id);
    }
  }

  function startHeartbeat(attempt, channel) {
    const beat = () => {
      if (attempt.over || channel.readyState !== "open") return;
      try {
        channel.send(JSON.stringify({ type: "ping", t: performance.now() / 1000 }));
      } catch (err) {
        console.warn("heartbeat not sent", err);
      }
    };
    beat();
    attempt.heartbeat = setInterval(beat, HEARTBEAT_MS);
  }

  function deleteCall(callId) {
    return requestJson("DELETE", `/api/calls/${encodeURIComponent(callId)}`, null,
                       HANGUP_TIMEOUT_MS).catch((err) => {
      console.warn("hang-up request failed", err);
    });
  }

  async function hangUp() {
    const attempt = current;
    if (!attempt || attempt.over) return;
    els.hangup.disabled = true;
    setStatus("Ending the call…");
    // Tell the server first: closing the connection first would let it see a dropped
    // peer rather than a hang-up.
    if (attempt.callId) await deleteCall(attempt.callId);
    finish(attempt, "ended", "Call ended. Thank you for calling.");
  }

  function finish(attempt, state, message) {
    if (attempt.over) return;
    attempt.over = true;
    clearInterval(attempt.heartbeat);
    if (attempt.pc) attempt.pc.close();
    stopStream(attempt.stream);
    els.avatar.srcObject = null;
    els.selfView.srcObject = null;
    els.selfView.hidden = true;
    els.unmute.hidden = true;
    els.frame.classList.remove("has-video");
    // Drop the caption at once: a line fading out over an ended call reads as still talking.
    captionSeq += 1;
    clearTimeout(captionTimer);
    els.captions.classList.remove("visible");
    els.captions.textContent = "";
    if (attempt === current) {
      els.placeholderText.textContent = state === "ended"
        ? "The call has ended. You can start a new one at any time."
        : state === "busy"
          ? "We are helping other customers right now."
          : "The call could not continue. You can try again.";
      setState(state, message);
    }
  }

  function stopStream(stream) {
    if (stream) for (const track of stream.getTracks()) track.stop();
  }

  function showSelfView(stream) {
    const hasVideo = stream && stream.getVideoTracks().length > 0;
    els.selfView.hidden = !hasVideo;
    els.selfView.srcObject = hasVideo ? stream : null;
  }

  function playAvatar() {
    els.avatar.play().then(() => {
      els.unmute.hidden = true;
    }, (err) => {
      // Autoplay with sound can be blocked; a tap on the page is enough to allow it.
      if (err && err.name === "NotAllowedError") els.unmute.hidden = false;
    });
  }

  function handleMessage(raw) {
    if (typeof raw !== "string") return;
    let msg = null;
    try {
      msg = JSON.parse(raw);
    } catch {
      // Not JSON: nothing this page can use.
    }
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "speech") {
      onSpeech(msg);
    } else if (msg.type === "transcript" && typeof msg.text === "string" && msg.text.trim()) {
      // The customer's own words, as the assistant heard them.
      addTranscript(msg.text.trim(), msg.t_start, msg.role === "customer" ? "You" : "Assistant");
    } else if (msg.type === "affect" || msg.type === "cues") {
      // Not shown to the customer; kept only so the latest value can be inspected.
      call[msg.type] = msg;
    }
  }

  function onSpeech(msg) {
    const text = typeof msg.text === "string" ? msg.text.trim() : "";
    if (msg.event === "start" && text) {
      call.captions.push(text);
      showCaption(text);
      addTranscript(text, msg.t);
    } else if (msg.event === "end") {
      hideCaption(CAPTION_LINGER_MS);
    }
  }

  function showCaption(text) {
    captionSeq += 1;
    clearTimeout(captionTimer);
    els.captions.textContent = text;
    els.captions.classList.add("visible");
  }

  function hideCaption(delayMs) {
    const seq = captionSeq;
    clearTimeout(captionTimer);
    captionTimer = setTimeout(() => {
      // A newer utterance may have started while this one lingered.
      if (seq === captionSeq) els.captions.classList.remove("visible");
    }, delayMs);
  }

  function formatOffset(t) {
    if (typeof t !== "number" || !Number.isFinite(t) || t < 0) return "";
    const s = Math.floor(t);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function addTranscript(text, t, speaker = "Assistant") {
    const item = document.createElement("li");
    if (speaker !== "Assistant") item.className = "customer";
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = speaker;
    const when = formatOffset(t);
    if (when) {
      const time = document.createElement("time");
      time.textContent = when;
      who.append(" ", time);
    }
    const body = document.createElement("p");
    body.textContent = text;
    item.append(who, body);
    els.transcript.append(item);
    while (els.transcript.children.length > TRANSCRIPT_MAX) els.transcript.firstChild.remove();
    els.transcriptEmpty.hidden = true;
    // Scroll only the list; scrolling the page would yank the video away on a phone.
    els.transcript.scrollTop = els.transcript.scrollHeight;
  }

  function clearTranscript() {
    els.transcript.replaceChildren();
    els.transcriptEmpty.hidden = false;
  }

  els.form.addEventListener("change", refreshControls);
  els.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    startCall();
  });
  els.hangup.addEventListener("click", hangUp);
  // The server's escalation policy alerts an operator; the call goes on meanwhile.
  els.human.addEventListener("click", () => {
    if (!current || !current.channel || current.channel.readyState !== "open") return;
    current.channel.send(JSON.stringify({ type: "human" }));
    current.askedForHuman = true;
    call.askedForHuman = true;
    setStatus("A person from our team has been asked to join this call.");
    refreshControls();
  });
  els.unmute.addEventListener("click", playAvatar);
  els.avatar.addEventListener("playing", () => els.frame.classList.add("has-video"));
  // Closing the connection on the way out lets the server see the customer leave at once
  // instead of waiting for timeouts. No DELETE here: leaving is not the same as hanging up.
  window.addEventListener("pagehide", () => {
    if (current && !current.over && current.pc) {
      clearInterval(current.heartbeat);
      current.pc.close();
    }
  });
  refreshControls();
})();
