// The responsive grid of participant tiles: picks the column count that makes tiles as
// large as possible for the space available (phones in portrait stack them).

const ASPECT = 16 / 9;
const GAP = 8;

export class Grid {
  constructor(container) {
    this.container = container;
    this.tiles = new Map(); // id -> Tile
    this._observer = new ResizeObserver(() => this.layout());
    this._observer.observe(container);
  }

  add(tile) {
    this.tiles.set(tile.id, tile);
    this.container.append(tile.root);
    this.layout();
  }

  get(id) {
    return this.tiles.get(id);
  }

  remove(id) {
    const tile = this.tiles.get(id);
    if (!tile) return;
    this.tiles.delete(id);
    tile.remove();
    this.layout();
  }

  clear() {
    for (const id of [...this.tiles.keys()]) this.remove(id);
  }

  /** Size tiles for the current count and container size. */
  layout() {
    const n = Math.max(1, this.tiles.size);
    const { width, height } = this.container.getBoundingClientRect();
    if (!width || !height) return;
    let best = { cols: 1, w: 0 };
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      const w = Math.min((width - GAP * (cols - 1)) / cols, ((height - GAP * (rows - 1)) / rows) * ASPECT);
      if (w > best.w) best = { cols, w };
    }
    this.container.style.setProperty("--tile-w", `${Math.floor(best.w)}px`);
    this.container.dataset.count = String(this.tiles.size);
  }

  destroy() {
    this._observer.disconnect();
    this.clear();
  }
}
