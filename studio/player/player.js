// Streaming Web Audio player: fetches a take's PCM from the studio's audio route and plays
// it while it is sampled. State lives on window, so remounts on reruns do not restart it.
export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const status = parentElement.querySelector(".wavenet-status");
  const canvas = parentElement.querySelector(".wavenet-wave");
  const registry = (window.__wavenetPlayers = window.__wavenetPlayers || {});
  if (!data || !data.url) {
    status.textContent = "";
    return;
  }
  let player = registry[data.url];
  if (!player) {
    // One take plays at a time: a new one silences the takes still playing.
    Object.values(registry).forEach(silence);
    player = registry[data.url] = { chunks: 0, bytes: 0, gaps: 0, done: false, error: null, firstAt: null,
                                    startedAt: null, peaks: [], schedule: [], sources: [], stopped: false };
    start(player, data);
  }
  if (data.stop) silence(player);
  const tick = () => {
    show(player, status, data);
    draw(player, canvas, data.total);
    report(player, setStateValue);
  };
  const timer = setInterval(tick, 250);
  tick();
  return () => clearInterval(timer);
}

function report(player, setStateValue) {
  // Tells the page whether audio is still to come or to play, so its Stop playback button stays
  // exactly as long as there is something to stop (the browser may play later than the server thinks).
  const playing = !player.stopped && !player.error && (!player.done || player.sources.length > 0);
  if (player.reported !== playing) {
    player.reported = playing;
    setStateValue("playing", playing);
  }
}

function silence(player) {
  // Stops what is scheduled and what is still to come (Stop playback, or a newer take).
  player.stopped = true;
  player.sources.forEach((source) => { try { source.stop(); } catch (error) { /* not started yet */ } });
  player.sources = [];
  if (player.reader) player.reader.cancel().catch(() => {});
}

function audioContext() {
  if (!window.__wavenetAudio) {
    window.__wavenetAudio = new AudioContext();
  }
  const context = window.__wavenetAudio;
  if (context.state === "suspended") {
    context.resume();
  }
  return context;
}

async function start(player, data) {
  const context = audioContext();
  // Seconds scheduled ahead: arrival jitter reaches 0.1-0.3 s on 2 cores. When sampling runs
  // slower than real time, every late chunk doubles the lead, so the take stutters a few times
  // at most instead of at every chunk.
  let lead = 0.3;
  let nextTime = 0;
  let carry = null;
  player.startedAt = performance.now();
  try {
    const response = await fetch(data.url, { cache: "no-store" });
    if (!response.ok) {
      throw new Error("audio route answered " + response.status);
    }
    const reader = (player.reader = response.body.getReader());
    for (;;) {
      const { value, done } = await reader.read();
      if (done || player.stopped) break;
      let bytes = value;
      if (carry) {
        const joined = new Uint8Array(carry.length + bytes.length);
        joined.set(carry);
        joined.set(bytes, carry.length);
        bytes = joined;
        carry = null;
      }
      const usable = bytes.length - (bytes.length % 2);
      if (usable < bytes.length) carry = bytes.slice(usable);
      if (usable === 0) continue;
      const view = new DataView(bytes.buffer, bytes.byteOffset, usable);
      const samples = new Float32Array(usable / 2);
      for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(2 * i, true) / 32768;
      const buffer = context.createBuffer(1, samples.length, data.rate);
      buffer.copyToChannel(samples, 0);
      const source = context.createBufferSource();
      source.buffer = buffer;
      source.connect(context.destination);
      if (nextTime < context.currentTime + 0.02) {
        if (player.chunks > 0) {
          // A late chunk: sampling runs slower than real time. Re-anchor once (an audible gap)
          // with a lead that covers the rest of the take at the arrival rate measured so far.
          player.gaps += 1;
          const received = player.bytes / 2 / data.rate;
          const ratio = received / ((performance.now() - player.startedAt) / 1000);
          const remaining = Math.max(0, (data.total || 0) / data.rate - received);
          lead = Math.max(lead * 2, Math.min(120, remaining * Math.max(0, 1 - ratio) + 0.5));
        }
        nextTime = context.currentTime + lead;
      }
      source.start(nextTime);
      player.sources.push(source);
      source.onended = () => { player.sources = player.sources.filter((s) => s !== source); };
      player.schedule.push([nextTime, buffer.duration]);
      nextTime += buffer.duration;
      // Min/max bars of about 10 ms (or 1/2,000 of a long take; a chunk's last bar may be shorter),
      // not one per chunk: a prime arrives as one long chunk and would otherwise be one block.
      const block = Math.max(Math.round(data.rate / 100), Math.ceil((data.total || 0) / 2000));
      for (let first = 0; first < samples.length; first += block) {
        const end = Math.min(samples.length, first + block);
        let low = 1, high = -1;
        for (let i = first; i < end; i++) {
          if (samples[i] < low) low = samples[i];
          if (samples[i] > high) high = samples[i];
        }
        player.peaks.push([end - first, low, high]);
      }
      player.chunks += 1;
      player.bytes += usable;
      if (player.firstAt === null) player.firstAt = performance.now();
      player.contextState = context.state;
    }
    player.done = true;
  } catch (error) {
    if (!player.stopped) player.error = String(error);
  }
}

function show(player, status, data) {
  if (player.error) {
    status.textContent = "Player: " + player.error;
  } else if (window.__wavenetAudio && window.__wavenetAudio.state !== "running") {
    status.textContent = "Audio is paused by the browser: click anywhere on the page to hear it.";
  } else {
    status.textContent = (player.stopped ? "Playback stopped" : player.done ? "All audio received" + toPlay(player)
                          : player.chunks ? "Playing as it is sampled · " + received(player, data) + " s received"
                          : "Waiting for the first samples…") +
      (player.gaps === 1 ? " · sampling fell behind playback once (a short pause)"
       : player.gaps > 1 ? " · sampling fell behind playback " + player.gaps + " times (a short pause each time)" : "");
  }
  status.dataset.chunks = String(player.chunks);
  status.dataset.bytes = String(player.bytes);
  status.dataset.done = String(player.done);
}

function received(player, data) {
  // Seconds of audio that reached the player, of the take's total: it moves with every chunk,
  // where the page's progress bar moves once a second.
  const total = data.total ? " of " + (data.total / data.rate).toFixed(1) : "";
  return (player.bytes / 2 / data.rate).toFixed(1) + total;
}

function toPlay(player) {
  // What is left of the take's playback, from the player's own schedule.
  const last = player.schedule[player.schedule.length - 1];
  const left = last ? last[0] + last[1] - window.__wavenetAudio.currentTime : 0;
  return left > 0.5 ? " · " + Math.round(left) + " s left to play" : "";
}

function draw(player, canvas, total) {
  // The take's waveform so far: min/max bars of what was received, on a fixed time axis.
  if (!canvas || !total) return;
  const context = canvas.getContext("2d");
  const width = canvas.width, height = canvas.height, middle = height / 2;
  context.clearRect(0, 0, width, height);
  context.fillStyle = "#6c8ebf";
  let position = 0;
  for (const [length, low, high] of player.peaks) {
    const x = (position / total) * width;
    const w = Math.max(1, (length / total) * width);
    context.fillRect(x, middle - high * middle, w, Math.max(1, (high - low) * middle));
    position += length;
  }
}
