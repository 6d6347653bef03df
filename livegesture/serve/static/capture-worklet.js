// AudioWorklet: microphone samples (context rate) -> 16 kHz mono float32 blocks of 320 samples (20 ms),
// posted to the main thread. Linear-interpolation resampler; a one-pole low-pass first when
// downsampling, so the worst aliasing above 8 kHz is damped.
class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / 16000;   // input samples per output sample
    this.pos = 0;                      // fractional read position in the input stream (relative to prev)
    this.prev = 0;                     // last input sample of the previous block
    this.lp = 0;
    this.alpha = this.ratio > 1 ? Math.min(1, 2 * Math.PI * 7000 / sampleRate) : 1;
    this.out = new Float32Array(320);
    this.n = 0;
  }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!ch) return true;
    // low-pass in place (copy: the input buffer is read-only)
    const x = new Float32Array(ch.length);
    for (let i = 0; i < ch.length; i++) { this.lp += this.alpha * (ch[i] - this.lp); x[i] = this.lp; }
    // x[-1] = this.prev; output sample at input position this.pos (from -1)
    while (this.pos < x.length - 1 + 1e-9) {
      const i = Math.floor(this.pos), f = this.pos - i;
      const a = i < 0 ? this.prev : x[i], b = i + 1 < x.length ? x[i + 1] : x[i];
      this.out[this.n++] = a + f * (b - a);
      if (this.n === 320) { this.port.postMessage(this.out.slice(0)); this.n = 0; }
      this.pos += this.ratio;
    }
    this.pos -= x.length;
    this.prev = x[x.length - 1];
    return true;
  }
}
registerProcessor("capture-16k", CaptureProcessor);
