// An output's warp in WebGL: its slice of the canvas (or its test card) cut,
// corner-pinned or mesh-warped, edge-blended and masked onto a canvas that stands
// for the output's frame. The projector page (/out/NAME) draws its screen with it,
// and /map its preview of each output as the projector will show it: one code, so
// the preview is the projector's picture.
import { BLEND_RAMP_GLSL, meshCells } from "/mapping.js";
import { drawTestcard } from "/testcard.js";

export const MAX_MASK = 16; // points of a mask polygon, as MAX_MASK_POINTS in server/commands.py

// The warp is drawn as geometry: each cell of the mesh (a corner-pin is one cell)
// is a quad of two triangles at its four points on the output's frame, and carries
// its own frame -> slice homography (the same on all six vertices, so the varyings
// are that constant). Outside every cell nothing is drawn: black.
const VERTEX = `
attribute vec2 aFrame;          // the vertex on the output's frame, 0..1, y down
attribute vec3 aH0, aH1, aH2;   // its cell's frame -> slice homography, by rows
varying vec2 vFrame;
varying vec3 vH0, vH1, vH2;
void main() {
  vFrame = aFrame; vH0 = aH0; vH1 = aH1; vH2 = aH2;
  gl_Position = vec4(aFrame.x * 2.0 - 1.0, 1.0 - aFrame.y * 2.0, 0.0, 1.0);
}`;

// Each pixel of a cell goes back through the cell's homography to a point s of the
// slice, s = (H0.p, H1.p) / H2.p with p = (x, y, 1). The slice point picks the canvas
// pixel (or the test card's), then the soft edges, brightness and black lift.
const FRAGMENT = `
precision highp float;
varying vec2 vFrame;
varying vec3 vH0, vH1, vH2;
uniform vec4 uRect, uBlend; // slice on the canvas; blend widths l r t b
uniform float uGamma, uBrightness, uBlack;
uniform bool uCard;
uniform sampler2D uVideo, uCardTex;
uniform vec2 uMask[${MAX_MASK}]; // the mask polygon on the frame; uMaskCount 0: no mask
uniform int uMaskCount;
${BLEND_RAMP_GLSL}
// Even-odd rule: a ray from q towards +x crosses edge (a, b) when the edge spans q.y
// and the crossing x = a.x + (q.y - a.y)(b.x - a.x)/(b.y - a.y) lies right of q;
// an odd count is inside. The same test as in_polygon in server/outputs/warp.py.
bool crosses(vec2 a, vec2 b, vec2 q) {
  return (a.y > q.y) != (b.y > q.y) && q.x < a.x + (q.y - a.y) * (b.x - a.x) / (b.y - a.y);
}
bool inMask(vec2 q) {
  bool inside = false;
  vec2 a = uMask[0];
  for (int i = 1; i < ${MAX_MASK}; i++) {
    if (i >= uMaskCount) break;
    if (crosses(a, uMask[i], q)) inside = !inside;
    a = uMask[i];
  }
  if (crosses(a, uMask[0], q)) inside = !inside; // the closing edge, last point to first
  return inside;
}
void main() {
  if (uMaskCount > 0 && !inMask(vFrame)) { gl_FragColor = vec4(0.0, 0.0, 0.0, 1.0); return; }
  vec3 p = vec3(vFrame, 1.0);
  vec2 s = clamp(vec2(dot(vH0, p), dot(vH1, p)) / dot(vH2, p), 0.0, 1.0);
  vec3 colour = uCard ? texture2D(uCardTex, s).rgb : texture2D(uVideo, uRect.xy + s * uRect.zw).rgb;
  float weight = 1.0;
  bool zone = false;
  if (uBlend.x > 0.0) { weight *= blendRamp(s.x / uBlend.x, uGamma); zone = zone || s.x < uBlend.x; }
  if (uBlend.y > 0.0) { weight *= blendRamp((1.0 - s.x) / uBlend.y, uGamma); zone = zone || 1.0 - s.x < uBlend.y; }
  if (uBlend.z > 0.0) { weight *= blendRamp(s.y / uBlend.z, uGamma); zone = zone || s.y < uBlend.z; }
  if (uBlend.w > 0.0) { weight *= blendRamp((1.0 - s.y) / uBlend.w, uGamma); zone = zone || 1.0 - s.y < uBlend.w; }
  gl_FragColor = vec4(colour * weight * uBrightness + (zone ? 0.0 : uBlack), 1.0);
}`;


const STRIDE = 11; // floats per vertex: frame x y, then the cell's homography's three rows

function link(gl, vs, fs) {
  const prog = gl.createProgram();
  for (const [type, source] of [[gl.VERTEX_SHADER, vs], [gl.FRAGMENT_SHADER, fs]]) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
    gl.attachShader(prog, shader);
  }
  gl.linkProgram(prog);
  if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(prog));
  return prog;
}

function texture(gl, unit) {
  const tex = gl.createTexture();
  gl.activeTexture(gl.TEXTURE0 + unit);
  gl.bindTexture(gl.TEXTURE_2D, tex);
  // Any size (no mipmaps, clamped): the canvas is W x H, not a power of two.
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
  gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, 1, 1, 0, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array([0, 0, 0, 255]));
  return tex;
}

// One canvas's warp: its own WebGL context, program, geometry and textures. The
// caller sizes the canvas (its pixels are the output's frame) and calls draw().
export class Warp {
  constructor(canvas) {
    this.canvas = canvas;
    const gl = canvas.getContext("webgl", { antialias: false, preserveDrawingBuffer: true });
    if (!gl) throw new Error("this browser has no WebGL");
    this.gl = gl;
    this.program = link(gl, VERTEX, FRAGMENT);
    gl.useProgram(this.program);
    this.uniforms = new Map();
    gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
    [["aFrame", 2, 0], ["aH0", 3, 2], ["aH1", 3, 5], ["aH2", 3, 8]].forEach(([name, size, offset]) => {
      const at = gl.getAttribLocation(this.program, name);
      gl.enableVertexAttribArray(at);
      gl.vertexAttribPointer(at, size, gl.FLOAT, false, STRIDE * 4, offset * 4);
    });
    this.geometryKey = "";
    this.vertexCount = 0;
    this.videoTex = texture(gl, 0);
    this.cardTex = texture(gl, 1);
    gl.uniform1i(this.uniform("uVideo"), 0);
    gl.uniform1i(this.uniform("uCardTex"), 1);
    this.card = document.createElement("canvas");
    this.cardDrawn = "";
  }

  uniform(name) {
    if (!this.uniforms.has(name)) this.uniforms.set(name, this.gl.getUniformLocation(this.program, name));
    return this.uniforms.get(name);
  }

  // The cells' triangles (TL TR BR, TL BR BL), rebuilt only when the warp changes.
  geometry(m) {
    const key = JSON.stringify([m.corners, m.mesh]);
    if (key === this.geometryKey) return;
    const data = [];
    for (const cell of meshCells(m)) {
      const h = cell.toSlice.flat();
      for (const i of [0, 1, 2, 0, 2, 3]) data.push(...cell.quad[i], ...h);
    }
    this.gl.bufferData(this.gl.ARRAY_BUFFER, new Float32Array(data), this.gl.DYNAMIC_DRAW);
    this.vertexCount = data.length / STRIDE;
    this.geometryKey = key;
  }

  // Black: no output to draw.
  clear() {
    const gl = this.gl;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(0, 0, 0, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
  }

  // Draw mapping `m` over the whole canvas. `video` is the canvas's stream; with
  // `fresh` false its last frame is kept (a held picture). `testcard` draws the
  // card instead, redrawn when `cardVersion` (anything the card depends on) changes.
  // False when the mapping has no warp to draw (its points lie on one line).
  draw(m, { video, fresh = true, testcard = false, cardVersion = "" }) {
    const gl = this.gl;
    const [width, height] = [this.canvas.width, this.canvas.height];
    gl.viewport(0, 0, width, height);
    if (fresh && video.readyState >= 2 && video.videoWidth > 0) {
      gl.activeTexture(gl.TEXTURE0);
      gl.bindTexture(gl.TEXTURE_2D, this.videoTex);
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, gl.RGB, gl.UNSIGNED_BYTE, video);
    }
    const cardKey = `${cardVersion} ${video.videoWidth}x${video.videoHeight} ${width}x${height}`;
    if (testcard && this.cardDrawn !== cardKey) {
      drawTestcard(this.card, m, [video.videoWidth || 1, video.videoHeight || 1], [width, height]);
      gl.activeTexture(gl.TEXTURE1);
      gl.bindTexture(gl.TEXTURE_2D, this.cardTex);
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, gl.RGB, gl.UNSIGNED_BYTE, this.card);
      this.cardDrawn = cardKey;
    }
    try { this.geometry(m); } catch (_) { return false; }
    gl.uniform4fv(this.uniform("uRect"), m.rect);
    gl.uniform4fv(this.uniform("uBlend"), m.blend);
    gl.uniform1f(this.uniform("uGamma"), m.gamma);
    gl.uniform1f(this.uniform("uBrightness"), m.brightness);
    gl.uniform1f(this.uniform("uBlack"), m.black);
    gl.uniform1i(this.uniform("uCard"), testcard ? 1 : 0);
    const mask = (m.mask || []).slice(0, MAX_MASK);
    gl.uniform1i(this.uniform("uMaskCount"), mask.length);
    if (mask.length) gl.uniform2fv(this.uniform("uMask"), new Float32Array([...mask.flat(), ...new Array(2 * (MAX_MASK - mask.length)).fill(0)]));
    gl.clearColor(0, 0, 0, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.drawArrays(gl.TRIANGLES, 0, this.vertexCount);
    return true;
  }
}
