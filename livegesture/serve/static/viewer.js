// LiveGesture viewer: streams a file or the microphone to /ws (pcm16, 20 ms packets, real time),
// receives binary frames with joint positions and animates a 55-joint skeleton (three.js).
// Latency shown = arrival of a frame - send time of the packet that completed its audio.
import * as THREE from "three";
import { OrbitControls } from "/static/vendor/OrbitControls.js";

const $ = (id) => document.getElementById(id);
const SR = 16000, PACKET = 320;

// ------------------------------------------------------------------ scene
const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
renderer.setPixelRatio(window.devicePixelRatio);
$("view").appendChild(renderer.domElement);
export const scene = new THREE.Scene();   // also used by gltf-view.js
scene.background = new THREE.Color(0x1d2127);
const camera = new THREE.PerspectiveCamera(35, 1, 0.05, 100);
camera.position.set(0.0, 1.1, 4.2);
const controls = new OrbitControls(camera, renderer.domElement);
controls.target.set(0, 0.9, 0);
controls.update();
scene.add(new THREE.HemisphereLight(0xffffff, 0x334455, 2.0));
const sun = new THREE.DirectionalLight(0xffffff, 1.5);
sun.position.set(2, 4, 3);
scene.add(sun);
const grid = new THREE.GridHelper(6, 24, 0x556070, 0x343a44);
scene.add(grid);

const NJ = 55;
const jointMesh = new THREE.InstancedMesh(new THREE.SphereGeometry(1, 12, 8),
  new THREE.MeshStandardMaterial({ color: 0xf0b060, roughness: 0.5 }), NJ);
scene.add(jointMesh);
const boneGeom = new THREE.BufferGeometry();
boneGeom.setAttribute("position", new THREE.BufferAttribute(new Float32Array(NJ * 2 * 3), 3));
const bones = new THREE.LineSegments(boneGeom, new THREE.LineBasicMaterial({ color: 0x9fd0ff }));
scene.add(bones);
let parents = null;

function resize() {
  const w = window.innerWidth, h = window.innerHeight;
  renderer.setSize(w, h);
  camera.aspect = w / h;
  camera.updateProjectionMatrix();
}
window.addEventListener("resize", resize);
resize();

const m4 = new THREE.Matrix4();
let floorY = null;
// The view follows the figure: joints are drawn relative to the pelvis x/z (the grid scrolls
// underneath to show travel), the camera aims at the pelvis height and the grid sits under the
// lowest joint seen.
function showJoints(raw) {
  const ox = raw[0], oz = raw[2];
  const j = Float32Array.from(raw, (v, k) => (k % 3 === 0 ? v - ox : k % 3 === 2 ? v - oz : v));
  let low = Infinity;
  for (let i = 0; i < NJ; i++) low = Math.min(low, j[3 * i + 1]);
  floorY = floorY === null ? low : Math.min(floorY, low);
  grid.position.set(-(ox % 0.25), floorY, -(oz % 0.25));
  controls.target.y += 0.1 * (j[1] + 0.1 - controls.target.y);
  controls.update();
  for (let i = 0; i < NJ; i++) {
    const r = i >= 25 ? 0.008 : (i === 15 ? 0.06 : 0.025);   // fingers small, head big
    m4.makeScale(r, r, r).setPosition(j[3 * i], j[3 * i + 1], j[3 * i + 2]);
    jointMesh.setMatrixAt(i, m4);
  }
  jointMesh.instanceMatrix.needsUpdate = true;
  if (parents) {
    const p = boneGeom.attributes.position.array;
    for (let i = 0; i < NJ; i++) {
      const q = parents[i] < 0 ? i : parents[i];
      for (let k = 0; k < 3; k++) { p[6 * i + k] = j[3 * q + k]; p[6 * i + 3 + k] = j[3 * i + k]; }
    }
    boneGeom.attributes.position.needsUpdate = true;
    boneGeom.computeBoundingSphere();
  }
}

// ------------------------------------------------------------------ state (also read by tests)
const state = window.lgState = {
  status: "idle", frames: 0, played: 0, lastJoints: null, latencyMs: null, latencies: [], ended: false, error: null,
};
function setStatus(s) { state.status = s; $("status").textContent = s; }

let queue = [];          // frames waiting to be shown at 30 fps
let clock = null;        // playback clock (performance.now() of frame queue[0])
function animate(now) {
  requestAnimationFrame(animate);
  if (queue.length) {
    if (clock === null) clock = now;
    // show frames at 30 fps; if more than 8 frames are waiting, catch up
    while (queue.length > 1 && (now - clock >= 1000 / 30 || queue.length > 8)) { queue.shift(); clock += 1000 / 30; }
    if (now - clock > 1000) clock = now;
    const f = queue[0];
    if (f !== state.lastShown) { showJoints(f.joints); state.lastShown = f; state.played++; }
  }
  renderer.render(scene, camera);
}
requestAnimationFrame(animate);

// ------------------------------------------------------------------ protocol
function wsUrl() { return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws"; }

function decodeFrame(buf) {
  const dv = new DataView(buf);
  const magic = String.fromCharCode(dv.getUint8(0), dv.getUint8(1), dv.getUint8(2), dv.getUint8(3));
  if (magic !== "LGF1") throw new Error("not a LiveGesture frame");
  const index = dv.getUint32(4, true), audioTime = dv.getFloat64(8, true), n = dv.getUint16(16, true);
  const vals = new Float32Array(buf, 20, n);
  return { index, audioTime, joints: vals.subarray(268, 268 + 165) };
}

class Session {
  constructor(seed) {
    this.sent = [];   // [cumulative samples, send time]
    this.samples = 0;
    this.pending = new Float32Array(0);
    this.ws = new WebSocket(wsUrl());
    this.ws.binaryType = "arraybuffer";
    this.ready = new Promise((resolve, reject) => {
      this.ws.onopen = () => this.ws.send(JSON.stringify({ type: "start", seed, sample_rate: SR, format: "pcm16",
                                                            output: "binary", joints: true,
                                                            smooth: Math.min(2, Math.max(0, parseFloat($("smooth").value) || 0)) }));
      this.ws.onmessage = (ev) => {
        if (typeof ev.data !== "string") return this.onFrame(decodeFrame(ev.data));
        const m = JSON.parse(ev.data);
        if (m.type === "started") { parents = m.parents; resolve(); }
        else if (m.type === "ended") { state.ended = true; setStatus(`ended: ${m.frames} frames`); stopUI(); }
        else if (m.type === "error") { if (m.fatal !== false) { state.error = m.message; setStatus("error: " + m.message); reject(new Error(m.message)); stopUI(); } }
      };
      this.ws.onclose = (ev) => { if (!state.ended && !state.error) setStatus(`closed (${ev.code})`); stopUI(); };
      this.ws.onerror = () => reject(new Error("connection failed"));
    });
  }
  onFrame(f) {
    const now = performance.now();
    const need = Math.ceil(f.audioTime * SR - 1e-6);
    const s = this.sent.find((e) => e[0] >= need);
    if (s) {
      const lat = now - s[1];
      state.latencies.push(lat);
      if (state.latencies.length > 60) state.latencies.shift();
      const sorted = [...state.latencies].sort((a, b) => a - b);
      state.latencyMs = sorted[Math.floor(sorted.length / 2)];
      $("latency").textContent = `${state.latencyMs.toFixed(0)} ms (median), last ${lat.toFixed(0)} ms`;
    }
    while (this.sent.length && this.sent[0][0] < need) this.sent.shift();
    state.frames++;
    state.lastJoints = Array.from(f.joints);
    queue.push(f);
    $("info").textContent = `frames ${state.frames}   audio ${f.audioTime.toFixed(2)} s`;
  }
  // float32 16 kHz samples -> pcm16 packets of 20 ms
  push(x) {
    const all = new Float32Array(this.pending.length + x.length);
    all.set(this.pending); all.set(x, this.pending.length);
    let i = 0;
    for (; i + PACKET <= all.length; i += PACKET) this.sendPacket(all.subarray(i, i + PACKET));
    this.pending = all.slice(i);
  }
  sendPacket(x) {
    const pcm = new Int16Array(x.length);
    for (let i = 0; i < x.length; i++) pcm[i] = Math.max(-32768, Math.min(32767, Math.round(x[i] * 32768)));
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(pcm.buffer);
    this.samples += x.length;
    this.sent.push([this.samples, performance.now()]);
  }
  end() {
    if (this.pending.length) this.sendPacket(this.pending);
    this.pending = new Float32Array(0);
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "end" }));
  }
}

// ------------------------------------------------------------------ sources
let session = null, stopSource = null;

function startUI() { $("play").disabled = true; $("mic").disabled = true; $("stop").disabled = false; }
function stopUI() { $("play").disabled = !$("file").files.length; $("mic").disabled = false; $("stop").disabled = true; }

async function to16k(arrayBuffer) {
  const ctx = new OfflineAudioContext(1, 1, 44100);
  const decoded = await ctx.decodeAudioData(arrayBuffer);
  const n = Math.ceil(decoded.duration * SR);
  const off = new OfflineAudioContext(1, n, SR);   // mixes to mono and resamples to 16 kHz
  const src = off.createBufferSource();
  src.buffer = decoded;
  src.connect(off.destination);
  src.start();
  return { samples: (await off.startRendering()).getChannelData(0), decoded };
}

async function streamFile(file) {
  Object.assign(state, { frames: 0, played: 0, ended: false, error: null, latencies: [] });
  queue = []; clock = null; floorY = null;
  setStatus("decoding " + file.name);
  const { samples, decoded } = await to16k(await file.arrayBuffer());
  session = new Session(parseInt($("seed").value) || 0);
  await session.ready;
  setStatus(`streaming ${file.name} (${(samples.length / SR).toFixed(1)} s)`);
  startUI();
  // play the audio locally while it is streamed (best effort: headless browsers may have no output)
  let player = null;
  try {
    const ac = new AudioContext();
    player = ac.createBufferSource(); player.buffer = decoded; player.connect(ac.destination); player.start();
  } catch (e) { player = null; }
  const t0 = performance.now();
  let k = 0, stopped = false;
  stopSource = () => { stopped = true; if (player) try { player.stop(); } catch (e) {} };
  await new Promise((resolve) => {
    const tick = () => {
      if (stopped) return resolve();
      // send every packet whose audio has "happened" by now (real-time pacing)
      const due = Math.min(samples.length, Math.floor((performance.now() - t0) / 1000 * SR / PACKET + 1) * PACKET);
      if (k < due) { session.push(samples.subarray(k, due)); k = due; }
      if (k >= samples.length) return resolve();
      setTimeout(tick, 10);
    };
    tick();
  });
  session.end();
}

async function startMic() {
  Object.assign(state, { frames: 0, played: 0, ended: false, error: null, latencies: [] });
  queue = []; clock = null; floorY = null;
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
  const ac = new AudioContext();
  await ac.audioWorklet.addModule("/static/capture-worklet.js");
  const src = ac.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(ac, "capture-16k");
  session = new Session(parseInt($("seed").value) || 0);
  await session.ready;
  node.port.onmessage = (ev) => session.push(ev.data);
  src.connect(node);
  setStatus(`microphone (${ac.sampleRate} Hz -> 16 kHz)`);
  startUI();
  stopSource = () => { src.disconnect(); node.disconnect(); stream.getTracks().forEach((t) => t.stop()); ac.close(); session.end(); };
}

$("file").addEventListener("change", () => { $("play").disabled = !$("file").files.length; });
$("play").addEventListener("click", () => streamFile($("file").files[0]).catch((e) => setStatus("error: " + e.message)));
$("mic").addEventListener("click", () => startMic().catch((e) => setStatus("microphone error: " + e.message)));
$("stop").addEventListener("click", () => { if (stopSource) stopSource(); stopUI(); });
setStatus("idle: choose an audio file or the microphone");
