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
}

/**
 * A table on stdout that updates in place on a terminal (plain ANSI, every
 * 250 ms), or a status line every 2 s elsewhere.
 */
export interface LiveView {
  /** Draws the final state (the full table in both modes) and stops updating. */
  stop(): void;
}

const hideCursor = "\x1b[?25l";
const showCursor = "\x1b[?25h";
const intervalMs = 250;
const plainIntervalMs = 2000;

export function startLiveView(options: LiveViewOptions): LiveView {
  const out = process.stdout;
  const tty = out.isTTY === true;
  let drawn = 0;

  function draw(lines: string[]) {
    // Back to the first line of the previous frame, then overwrite line by line.
    let text = drawn > 0 ? `\x1b[${drawn}F` : "";
    const width = (out.columns ?? 120) - 1;
    // Frames are plain text (no colour codes), so length is the visible width.
    for (const line of lines) text += `\x1b[2K${line.slice(0, width)}\n`;
    out.write(text);
    drawn = lines.length;
  }

  let timer: NodeJS.Timeout;
  if (tty) {
    out.write(hideCursor);
    process.once("exit", restoreCursor);
    draw(options.frame().lines);
    timer = setInterval(() => draw(options.frame().lines), intervalMs);
  } else {
    timer = setInterval(() => out.write(`  ${options.frame().status}\n`), plainIntervalMs);
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

/** Lays out rows (plain text) as aligned columns; the first column is left-aligned, the others right-aligned. */
export function formatTable(header: string[], rows: string[][]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? "").length)));
  const line = (r: string[]) =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join("  ");
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
