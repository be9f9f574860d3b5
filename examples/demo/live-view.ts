/** What a live view shows at one moment. */
export interface Frame {
  /** The full picture, redrawn in place on a terminal. */
  lines: string[];
  /** One line for logs: printed now and then when stdout is not a terminal. */
  status: string;
}

/** Options of startLiveView. */
export interface LiveViewOptions {
  /** Draws the current state. */
  frame(): Frame;
  /** Redraw period on a terminal. Default 250 ms. */
  intervalMs?: number;
  /** Status line period when stdout is not a terminal. Default 2000 ms. */
  plainIntervalMs?: number;
  /** Output. Default process.stdout. */
  out?: NodeJS.WriteStream;
}

/** A table that updates in place on a terminal (plain ANSI), or a periodic status line elsewhere. */
export interface LiveView {
  /** Draws the final state (the full table in both modes) and stops updating. */
  stop(): void;
}

const hideCursor = "\x1b[?25l";
const showCursor = "\x1b[?25h";

export function startLiveView(options: LiveViewOptions): LiveView {
  const out = options.out ?? process.stdout;
  const tty = out.isTTY === true;
  let drawn = 0;

  function draw(lines: string[]) {
    // Back to the first line of the previous frame, then overwrite line by line.
    let text = drawn > 0 ? `\x1b[${drawn}F` : "";
    const width = (out.columns ?? 120) - 1;
    for (const line of lines) text += `\x1b[2K${clip(line, width)}\n`;
    out.write(text);
    drawn = lines.length;
  }

  let timer: NodeJS.Timeout;
  if (tty) {
    out.write(hideCursor);
    process.once("exit", restoreCursor);
    draw(options.frame().lines);
    timer = setInterval(() => draw(options.frame().lines), options.intervalMs ?? 250);
  } else {
    timer = setInterval(() => out.write(`  ${options.frame().status}\n`), options.plainIntervalMs ?? 2000);
  }
  function restoreCursor() {
    out.write(showCursor);
  }

  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      const { lines } = options.frame();
      if (tty) {
        draw(lines);
        restoreCursor();
        process.off("exit", restoreCursor);
      } else {
        out.write(`${lines.join("\n")}\n`);
      }
    },
  };
}

/** Cuts a line to the terminal width, counting visible characters only (ANSI codes are zero width). */
function clip(line: string, width: number): string {
  let visible = 0;
  let out = "";
  for (let i = 0; i < line.length; i++) {
    if (line[i] === "\x1b") {
      const end = line.indexOf("m", i);
      if (end > 0) {
        out += line.slice(i, end + 1);
        i = end;
        continue;
      }
    }
    if (visible >= width) continue;
    out += line[i];
    visible++;
  }
  return out;
}

/** Lays out rows as aligned columns; the first column is left-aligned, the others right-aligned. */
export function formatTable(header: string[], rows: string[][]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => visibleLength(r[c] ?? ""))));
  const line = (r: string[]) =>
    r.map((cell, c) => (c === 0 ? padEnd(cell, widths[c] ?? 0) : padStart(cell, widths[c] ?? 0))).join("  ");
  const rule = widths.map((w) => "─".repeat(w)).join("  ");
  return [line(header), rule, ...rows.map(line)];
}

/** A share 0..1 as a small bar and a percentage, e.g. `████▌    56%`. */
export function shareCell(share: number, width = 4): string {
  if (!Number.isFinite(share)) return `${" ".repeat(width)}    -`;
  const eighths = Math.round(share * width * 8);
  const full = Math.floor(eighths / 8);
  const partial = eighths % 8;
  const bar = "█".repeat(full) + (partial > 0 ? (partialBlocks[partial] ?? "") : "");
  return `${bar.padEnd(width)} ${`${Math.round(share * 100)}%`.padStart(4)}`;
}
const partialBlocks = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];

/** Milliseconds with a precision that suits their size. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return "-";
  return value < 10 ? `${value.toFixed(1)} ms` : `${Math.round(value)} ms`;
}

function visibleLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "\x1b") {
      const end = s.indexOf("m", i);
      if (end > 0) {
        i = end;
        continue;
      }
    }
    n++;
  }
  return n;
}
function padEnd(s: string, w: number): string {
  return s + " ".repeat(Math.max(0, w - visibleLength(s)));
}
function padStart(s: string, w: number): string {
  return " ".repeat(Math.max(0, w - visibleLength(s))) + s;
}
