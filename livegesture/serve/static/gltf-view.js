// Plays a .glb written by `livegesture generate --glb` (or write_gltf) in the viewer's scene:
// three.js's GLTFLoader reads the file chosen in the "glTF" input, an AnimationMixer plays its
// animation at the file's own key times, looping. The viewer's render loop draws it.
// While it plays, the live stick figure is hidden; a stream that starts sending frames removes
// the file's figure and shows the stick figure again.
// window.lgGltf holds what was loaded (also read by the tests); lgGltf.jointsAt(t) poses the
// figure at t seconds and returns the world position of every skin joint, in skin order.
import * as THREE from "three";
import { GLTFLoader } from "/static/vendor/loaders/GLTFLoader.js";
import { scene } from "/static/viewer.js";

const state = window.lgGltf = { status: "none", names: [], keys: 0, duration: 0, fps: null, error: null };
let root = null, mixer = null, bones = [], framesAtLoad = 0;
// the viewer's stick figure: its joint spheres and bone lines
const stickFigure = () => scene.children.filter((o) => o.isInstancedMesh || (o.isLineSegments && o.type !== "GridHelper"));
const clock = new THREE.Clock();

const input = Object.assign(document.createElement("input"), { id: "glb", type: "file", accept: ".glb" });
const label = document.createElement("label");
label.title = "play a .glb written by 'livegesture generate --glb'";
label.append("glTF ", input);
document.getElementById("bar").insertBefore(label, document.getElementById("status"));

function tick() {
  requestAnimationFrame(tick);
  const dt = clock.getDelta();
  if (root && window.lgState && window.lgState.frames !== framesAtLoad) {   // a live stream took over
    scene.remove(root);
    root = mixer = null;
    stickFigure().forEach((o) => { o.visible = true; });
    state.status = "none";
  }
  if (mixer && state.status === "playing") mixer.update(dt);
}
requestAnimationFrame(tick);

state.jointsAt = (t) => {
  state.status = "paused";
  mixer.setTime(t);
  root.updateMatrixWorld(true);
  const v = new THREE.Vector3();
  return bones.map((b) => b.getWorldPosition(v).toArray());
};
state.play = () => { state.status = "playing"; };

input.addEventListener("change", async () => {
  const file = input.files[0];
  if (!file) return;
  state.status = "loading";
  try {
    const gltf = await new GLTFLoader().parseAsync(await file.arrayBuffer(), "");
    if (root) scene.remove(root);
    root = gltf.scene;
    scene.add(root);
    framesAtLoad = window.lgState ? window.lgState.frames : 0;
    stickFigure().forEach((o) => { o.visible = false; });
    const skins = [];
    root.traverse((o) => { if (o.isSkinnedMesh) skins.push(o); });
    bones = skins.length ? skins[0].skeleton.bones : [];
    const clip = gltf.animations[0];
    mixer = new THREE.AnimationMixer(root);
    mixer.clipAction(clip).play();
    const extras = (gltf.parser.json.animations || [{}])[0].extras || {};
    Object.assign(state, { names: bones.map((b) => b.name), keys: clip.tracks[0].times.length,
                           duration: clip.duration, fps: extras.fps ?? null, error: null, status: "playing" });
  } catch (e) {
    Object.assign(state, { status: "error", error: String(e) });
  }
});
