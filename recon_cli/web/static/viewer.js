// A small WebGL mesh viewer for recon serve (no libraries, works offline).
// Drag to turn the mesh, wheel or pinch to zoom, double-click to reset.
"use strict";

const MeshViewer = (() => {
  const VERTEX = `
    attribute vec3 position;
    attribute vec3 normal;
    uniform mat4 mvp;
    uniform mat4 model;
    varying vec3 vNormal;
    void main() {
      vNormal = (model * vec4(normal, 0.0)).xyz;
      gl_Position = mvp * vec4(position, 1.0);
    }`;
  const FRAGMENT = `
    precision mediump float;
    varying vec3 vNormal;
    uniform vec3 colour;
    void main() {
      vec3 n = normalize(vNormal);
      if (!gl_FrontFacing) n = -n;
      float key = max(dot(n, normalize(vec3(-0.4, 0.8, 0.9))), 0.0);
      float fill = max(dot(n, normalize(vec3(0.7, 0.1, 0.6))), 0.0);
      float rim = max(dot(n, normalize(vec3(0.0, -0.5, -1.0))), 0.0);
      vec3 c = colour * (0.32 + 0.62 * key + 0.18 * fill + 0.12 * rim);
      gl_FragColor = vec4(min(c, 1.0), 1.0);
    }`;

  // column-major 4x4 matrices
  function multiply(a, b) {
    const out = new Float32Array(16);
    for (let c = 0; c < 4; c++)
      for (let r = 0; r < 4; r++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
        out[c * 4 + r] = s;
      }
    return out;
  }
  function perspective(fovy, aspect, near, far) {
    const f = 1 / Math.tan(fovy / 2), nf = 1 / (near - far);
    return new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * nf, -1, 0, 0, 2 * far * near * nf, 0]);
  }
  function rotation(yaw, pitch) {
    const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
    // pitch about x after yaw about y
    return new Float32Array([cy, sp * sy, -cp * sy, 0, 0, cp, sp, 0, sy, -sp * cy, cp * cy, 0, 0, 0, 0, 1]);
  }
  function translation(x, y, z) {
    return new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, x, y, z, 1]);
  }

  function compile(gl, type, source) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
    return shader;
  }

  class Viewer {
    constructor(canvas) {
      this.canvas = canvas;
      const attrs = { antialias: true, preserveDrawingBuffer: true };
      this.gl = canvas.getContext("webgl2", attrs) || canvas.getContext("webgl", attrs);
      if (!this.gl) throw new Error("this browser has no WebGL: the 3D view is not available (downloads still work)");
      const gl = this.gl;
      this.uint32 = !!(typeof WebGL2RenderingContext !== "undefined" && gl instanceof WebGL2RenderingContext)
        || !!gl.getExtension("OES_element_index_uint");
      const program = gl.createProgram();
      gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX));
      gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT));
      gl.linkProgram(program);
      if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
      this.program = program;
      this.loc = {
        position: gl.getAttribLocation(program, "position"), normal: gl.getAttribLocation(program, "normal"),
        mvp: gl.getUniformLocation(program, "mvp"), model: gl.getUniformLocation(program, "model"),
        colour: gl.getUniformLocation(program, "colour"),
      };
      this.count = 0;
      this.reset();
      this._controls();
      this.draw();
    }

    reset() { this.yaw = -0.7; this.pitch = 0.42; this.distance = 2.1; this.draw(); }

    // data: ArrayBuffer from /api/jobs/ID/viewer.bin (int32 V, F; float32 V*3 positions, V*3 normals; uint32 F*3)
    load(data) {
      const gl = this.gl;
      const head = new Int32Array(data, 0, 2);
      const nv = head[0], nf = head[1];
      const positions = new Float32Array(data, 8, nv * 3);
      const normals = new Float32Array(data, 8 + nv * 12, nv * 3);
      let faces = new Uint32Array(data, 8 + nv * 24, nf * 3);
      if (!this.uint32) {
        if (nv > 65535) throw new Error("mesh too large for this browser's WebGL");
        faces = Uint16Array.from(faces);
      }
      // centre and scale to unit size
      let lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
      for (let i = 0; i < nv; i++)
        for (let k = 0; k < 3; k++) {
          const v = positions[i * 3 + k];
          if (v < lo[k]) lo[k] = v;
          if (v > hi[k]) hi[k] = v;
        }
      this.centre = [0, 1, 2].map(k => (lo[k] + hi[k]) / 2);
      this.scale = 1 / Math.max(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2], 1e-6);
      const buffer = (target, array) => {
        const b = gl.createBuffer();
        gl.bindBuffer(target, b);
        gl.bufferData(target, array, gl.STATIC_DRAW);
        return b;
      };
      this.buffers = {
        position: buffer(gl.ARRAY_BUFFER, positions), normal: buffer(gl.ARRAY_BUFFER, normals),
        index: buffer(gl.ELEMENT_ARRAY_BUFFER, faces),
      };
      this.indexType = this.uint32 ? gl.UNSIGNED_INT : gl.UNSIGNED_SHORT;
      this.count = nf * 3;
      this.reset();
    }

    draw() {
      const gl = this.gl, canvas = this.canvas;
      const dpr = window.devicePixelRatio || 1;
      const w = Math.max(1, Math.round(canvas.clientWidth * dpr)), h = Math.max(1, Math.round(canvas.clientHeight * dpr));
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      gl.viewport(0, 0, w, h);
      gl.clearColor(0.965, 0.97, 0.975, 1);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      if (!this.count) return;
      gl.enable(gl.DEPTH_TEST);
      gl.useProgram(this.program);
      const c = this.centre, s = this.scale;
      const fit = new Float32Array([s, 0, 0, 0, 0, s, 0, 0, 0, 0, s, 0, -c[0] * s, -c[1] * s, -c[2] * s, 1]);
      const model = multiply(rotation(this.yaw, this.pitch), fit);
      const view = translation(0, 0, -this.distance);
      const mvp = multiply(perspective(0.75, w / h, 0.05, 20), multiply(view, model));
      gl.uniformMatrix4fv(this.loc.mvp, false, mvp);
      gl.uniformMatrix4fv(this.loc.model, false, model);
      gl.uniform3f(this.loc.colour, 0.70, 0.74, 0.80);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.buffers.position);
      gl.enableVertexAttribArray(this.loc.position);
      gl.vertexAttribPointer(this.loc.position, 3, gl.FLOAT, false, 0, 0);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.buffers.normal);
      gl.enableVertexAttribArray(this.loc.normal);
      gl.vertexAttribPointer(this.loc.normal, 3, gl.FLOAT, false, 0, 0);
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.buffers.index);
      gl.drawElements(gl.TRIANGLES, this.count, this.indexType, 0);
    }

    _controls() {
      const canvas = this.canvas;
      let last = null, pinch = null;
      const redraw = () => requestAnimationFrame(() => this.draw());
      canvas.addEventListener("pointerdown", e => { last = [e.clientX, e.clientY]; canvas.setPointerCapture(e.pointerId); });
      canvas.addEventListener("pointerup", () => { last = null; });
      canvas.addEventListener("pointermove", e => {
        if (!last || pinch) return;
        this.yaw += (e.clientX - last[0]) * 0.01;
        this.pitch = Math.max(-1.5, Math.min(1.5, this.pitch + (e.clientY - last[1]) * 0.01));
        last = [e.clientX, e.clientY];
        redraw();
      });
      canvas.addEventListener("wheel", e => {
        e.preventDefault();
        this.distance = Math.max(0.8, Math.min(8, this.distance * Math.exp(e.deltaY * 0.001)));
        redraw();
      }, { passive: false });
      canvas.addEventListener("touchmove", e => {
        if (e.touches.length !== 2) { pinch = null; return; }
        const d = Math.hypot(e.touches[0].clientX - e.touches[1].clientX, e.touches[0].clientY - e.touches[1].clientY);
        if (pinch) this.distance = Math.max(0.8, Math.min(8, this.distance * pinch / d));
        pinch = d;
        redraw();
      });
      canvas.addEventListener("dblclick", () => this.reset());
      window.addEventListener("resize", redraw);
    }
  }
  return Viewer;
})();
