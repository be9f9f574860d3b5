/**
 * The HPACK dynamic table (RFC 7541 section 2.3.2, 4): newest entry first,
 * each entry counting name + value + 32 bytes, oldest ones evicted to stay
 * within maxSize. A ring of parallel arrays: no object per entry.
 */
export interface DynamicTable {
  /** Number of entries. */
  readonly length: number;
  /** Sum of entry sizes, in bytes. */
  readonly size: number;
  /** Current maximum size, in bytes. */
  readonly maxSize: number;
  /** Entries ever inserted; `inserted - 1 - i` is the id of entry `i`, stable across inserts. */
  readonly inserted: number;
  /** Name of entry i (0 = newest). i must be < length. */
  name(i: number): string;
  /** Value of entry i (0 = newest). */
  value(i: number): string;
  /** Adds an entry, evicting old ones; an entry larger than maxSize empties the table (section 4.4). */
  add(name: string, value: string): void;
  /** Sets the maximum size, evicting until the table fits. */
  resize(maxSize: number): void;
  /** Called with the id (see `inserted`) of each entry as it is evicted. */
  onEvict: ((id: number, name: string, value: string) => void) | undefined;
}

/** Size of an entry as RFC 7541 section 4.1 counts it (lengths in octets; latin1 strings). */
export function entrySize(name: string, value: string): number {
  return name.length + value.length + 32;
}

export function createDynamicTable(maxSize: number): DynamicTable {
  let names: string[] = new Array(16);
  let values: string[] = new Array(16);
  let sizes = new Uint32Array(16);
  let head = 0; // slot of the newest entry
  let count = 0;
  let size = 0;
  let max = maxSize;
  let inserted = 0;

  function evictOldest(table: DynamicTable) {
    const slot = (head + count - 1) & (names.length - 1);
    size -= sizes[slot]!;
    count--;
    const id = inserted - 1 - count;
    if (table.onEvict) table.onEvict(id, names[slot]!, values[slot]!);
    names[slot] = "";
    values[slot] = "";
  }

  function grow() {
    const cap = names.length * 2;
    const n: string[] = new Array(cap);
    const v: string[] = new Array(cap);
    const s = new Uint32Array(cap);
    for (let i = 0; i < count; i++) {
      const from = (head + i) & (names.length - 1);
      n[i] = names[from]!;
      v[i] = values[from]!;
      s[i] = sizes[from]!;
    }
    names = n;
    values = v;
    sizes = s;
    head = 0;
  }

  const table: DynamicTable = {
    get length() {
      return count;
    },
    get size() {
      return size;
    },
    get maxSize() {
      return max;
    },
    get inserted() {
      return inserted;
    },
    onEvict: undefined,
    name(i) {
      return names[(head + i) & (names.length - 1)]!;
    },
    value(i) {
      return values[(head + i) & (names.length - 1)]!;
    },
    add(name, value) {
      const s = entrySize(name, value);
      while (count > 0 && size + s > max) evictOldest(table);
      if (s > max) {
        inserted++; // the entry's id is spent, as if added and evicted at once
        return;
      }
      if (count === names.length) grow();
      head = (head - 1) & (names.length - 1);
      names[head] = name;
      values[head] = value;
      sizes[head] = s;
      count++;
      size += s;
      inserted++;
    },
    resize(maxSize) {
      max = maxSize;
      while (count > 0 && size > max) evictOldest(table);
    },
  };
  return table;
}
