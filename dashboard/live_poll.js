// The browser half of dashboard/live_poll.py: ask the version route every 1-2 s, and rerun the fragment
// this component sits in only when the answer differs from the token its page was drawn with; between
// two reruns, tick the status line's Elapsed and ETA from the two points of the clock Python hands over.
//
// Streamlit calls the default export again on every rerun of the fragment, with the new data, and calls
// the returned cleanup only when the component leaves the page (seen in headless Chromium: a timer
// started per call outlived its data and kept asking for reruns). So one Poller per mounted element
// holds the timers, and each call only hands it the new data.

const HOLDER = "__trainerCoreLivePoll";
const ASK_AGAIN_MS = 5000;

// Python's round(): halves to even ("2.5" -> 2), as tables.format_duration rounds.
export function roundHalfEven(x) {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest !== 0.5) return rest < 0.5 ? floor : floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

const pad = (n) => String(n).padStart(2, "0");

// dashboard/tables.py format_duration, same texts (tests/test_dashboard_live.py compares them).
export function formatDuration(seconds) {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return "—";
  const s = roundHalfEven(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${pad(Math.floor((s % 86400) / 3600))}h`;
}

// dashboard/tables.py format_eta for an active run with an estimate.
export function formatEta(seconds) {
  if (seconds === null || !Number.isFinite(seconds)) return "—";
  if (seconds < 1) return "finishing";
  return "~" + formatDuration(seconds);
}

const FORMATS = { duration: formatDuration, eta: formatEta };

function firstText(element) {
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  return walker.nextNode();
}

// The text node a metric's clock item writes (its value, found by its label): a node whose text is
// replaced in place, so React keeps owning it and the next rerun's text lands as usual.
function metricText(item) {
  for (const metric of document.querySelectorAll('[data-testid="stMetric"]')) {
    const label = metric.querySelector('[data-testid="stMetricLabel"]');
    const value = metric.querySelector('[data-testid="stMetricValue"]');
    if (label && value && label.innerText.trim() === item.metric) return firstText(value);
  }
  return null;
}

// The progress bar's text node holding the ETA, and its text up to the ETA. Found by the words that end
// the clock's `before` (" · ETA "), not by all of `before`: the bar can be drawn by another rerun than
// the one that mounted this clock (a CI run once showed the bar 19 s behind the ETA card).
function barTail(item) {
  const marker = item.before.slice(item.before.lastIndexOf(" · "));
  for (const bar of document.querySelectorAll('[data-testid="stProgress"]')) {
    const walker = document.createTreeWalker(bar, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const at = node.nodeValue.lastIndexOf(marker);
      if (at >= 0) return [node, node.nodeValue.slice(0, at + marker.length)];
    }
  }
  return [null, ""];
}

class Poller {
  update(data, setTriggerValue) {
    const samePace = this.data && this.data.url === data.url && this.data.every_ms === data.every_ms;
    this.data = data;
    this.setTriggerValue = setTriggerValue;
    this.asked = null; // the token a rerun was asked for, so one change asks once
    this.drawnAt = performance.now();
    if (!this.timer || !samePace) {
      clearInterval(this.timer);
      this.timer = setInterval(() => this.check(), data.every_ms);
    }
    clearInterval(this.ticker);
    this.ticker = data.clock && data.clock.length ? setInterval(() => this.tick(), 1000) : null;
  }

  stop() {
    clearInterval(this.timer);
    clearInterval(this.ticker);
    this.timer = this.ticker = null;
  }

  async check() {
    if (this.busy) return; // a slow answer: never two questions in flight
    this.busy = true;
    try {
      const response = await fetch(this.data.url, { cache: "no-store", credentials: "same-origin" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const { v } = await response.json();
      this.failures = 0;
      // Ask once per new token, and again if no rerun came within ASK_AGAIN_MS: a trigger sent while the
      // script was busy with another rerun (a button's) can be dropped, and the page would then wait
      // for the next change, which for a run that just stopped never comes (seen in CI, once).
      const waited = performance.now() - (this.askedAt || 0);
      if (v !== this.data.token && (v !== this.asked || waited > ASK_AGAIN_MS)) {
        this.asked = v;
        this.askedAt = performance.now();
        this.setTriggerValue("changed", v);
      }
    } catch (error) {
      this.failures = (this.failures || 0) + 1;
      // The same for the fallback: said again every failures_allowed failures until a rerun switches it.
      if (this.failures % this.data.failures_allowed === 0) {
        console.warn("live poll: the version route is unreachable; back to Streamlit's timer", error);
        this.setTriggerValue("unreachable", true);
      }
    } finally {
      this.busy = false;
    }
  }

  tick() {
    const minutes = (performance.now() - this.drawnAt) / 60000;
    for (const item of this.data.clock) {
      const [now, minuteOn] = item.seconds;
      const value = FORMATS[item.format](now + (minuteOn - now) * minutes);
      const [node, head] = item.metric !== undefined ? [metricText(item), ""] : barTail(item);
      const text = head + value;
      if (node && node.nodeValue !== text) node.nodeValue = text;
    }
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let poller = parentElement[HOLDER];
  if (!poller) {
    poller = new Poller();
    parentElement[HOLDER] = poller;
  }
  poller.update(data, setTriggerValue);
  return () => poller.stop();
}
