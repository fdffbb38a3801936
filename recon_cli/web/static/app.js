// recon serve page: upload photos, follow the job, show masks, the mesh and its downloads.
"use strict";

const $ = id => document.getElementById(id);
let limits = null;
let viewer = null;
let shown = null;          // id of the job whose mesh is in the viewer
const jobs = new Map();    // id -> last status

function showError(message) {
  const box = $("error");
  box.textContent = message ? String(message).split("\n")[0] : "";
  box.hidden = !message;
}

function mb(n) { return (n / 1e6).toFixed(1) + " MB"; }

function checkFiles(files) {
  if (!files.length) return "no photos chosen";
  if (files.length > limits.max_photos) return `${files.length} photos: at most ${limits.max_photos} per object`;
  let total = 0;
  for (const f of files) {
    const dot = f.name.lastIndexOf(".");
    const suffix = dot >= 0 ? f.name.slice(dot).toLowerCase() : "";
    if (!limits.suffixes.includes(suffix)) return `${f.name}: not a supported photo type (use ${limits.suffixes.join(" ")})`;
    if (f.size > limits.max_bytes) return `${f.name}: ${mb(f.size)} is over the upload limit of ${mb(limits.max_bytes)}`;
    total += f.size;
  }
  if (total > limits.max_bytes) return `the photos are ${mb(total)} together, over the upload limit of ${mb(limits.max_bytes)}`;
  return null;
}

async function upload(files) {
  showError(null);
  const problem = checkFiles(files);
  if (problem) { showError(problem); return null; }
  const form = new FormData();
  for (const f of files) form.append("photos", f, f.name);
  setStatus("uploading", 0.01);
  let response;
  try {
    response = await fetch("/api/jobs", { method: "POST", body: form });
  } catch (e) {
    showError("upload failed: " + e.message);
    return null;
  }
  const doc = await response.json().catch(() => ({ error: `server answered ${response.status}` }));
  if (!response.ok) { showError(doc.error || `server answered ${response.status}`); return null; }
  window.reconSubmitted.push(doc);
  track(doc);
  return doc;
}

function setStatus(text, progress) {
  $("status-box").hidden = false;
  $("status").textContent = text;
  $("bar-fill").style.width = Math.round(100 * Math.max(0, Math.min(1, progress))) + "%";
}

function renderJobs() {
  const list = $("jobs");
  list.textContent = "";
  for (const doc of [...jobs.values()].reverse()) {
    const li = document.createElement("li");
    li.dataset.job = doc.id;
    li.dataset.state = doc.state;
    li.className = "job " + doc.state;
    const what = doc.photos.join(", ");
    li.textContent = `${what}: ${doc.state === "error" ? doc.error : doc.message}`;
    if (doc.state === "done") {
      li.classList.add("clickable");
      li.onclick = () => show(doc);
    }
    list.appendChild(li);
  }
}

function showMasks(doc) {
  const box = $("masks");
  box.textContent = "";
  doc.masks.forEach((url, i) => {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = url;
    img.alt = "detected object in " + doc.photos[i];
    const cap = document.createElement("figcaption");
    cap.textContent = `${doc.photos[i]} (${doc.methods[i] || "mask"})`;
    fig.append(img, cap);
    box.appendChild(fig);
  });
}

async function show(doc) {
  shown = doc.id;
  showMasks(doc);
  for (const fmt of ["obj", "stl", "glb", "ply"]) $("dl-" + fmt).href = doc.downloads[fmt];
  $("downloads").hidden = false;
  const m = doc.mesh;
  $("mesh-info").textContent = `${m.vertices} vertices, ${m.faces} faces, ${m.watertight ? "watertight" : "not watertight"}, ${m.seconds} s`;
  if (!viewer) return;
  const response = await fetch(doc.viewer);
  if (!response.ok) { showError("cannot load the mesh for the viewer"); return; }
  viewer.load(await response.arrayBuffer());
  document.body.dataset.shown = doc.id;
}

async function track(doc) {
  jobs.set(doc.id, doc);
  renderJobs();
  while (true) {
    const current = jobs.get(doc.id);
    setStatus(current.state === "error" ? "failed" : current.message, current.progress);
    if (current.masks.length && current.state !== "done") showMasks(current);
    if (current.state === "done") { await show(current); setStatus("done", 1); return; }
    if (current.state === "error") { showError(current.error); return; }
    await new Promise(r => setTimeout(r, 250));
    let response;
    try { response = await fetch("/api/jobs/" + doc.id); } catch (e) { showError("lost the server: " + e.message); return; }
    const next = await response.json();
    if (!response.ok) { showError(next.error); return; }
    jobs.set(doc.id, next);
    renderJobs();
  }
}

async function main() {
  try {
    viewer = new MeshViewer($("viewer"));
  } catch (e) {
    showError(e.message);
  }
  limits = await (await fetch("/api/limits")).json();
  const input = $("file"), drop = $("drop");
  input.addEventListener("change", () => { upload([...input.files]); input.value = ""; });
  ["dragenter", "dragover"].forEach(t => drop.addEventListener(t, e => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach(t => drop.addEventListener(t, e => { e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", e => upload([...e.dataTransfer.files]));
  document.body.dataset.ready = "1";
}

window.reconUpload = upload;   // for scripted use (and the browser test)
window.reconJobs = jobs;        // id -> latest status document
window.reconSubmitted = [];     // the server's first answer for each upload, in order
main();
