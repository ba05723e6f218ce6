// The responsive grid of participant tiles: picks the column count that makes tiles as
// large as possible for the space available (phones in portrait stack them). With a tile
// on the stage (a shared screen, or a pinned tile) that tile is as large as it can be and
// the others form a strip of small tiles under it.

const ASPECT = 16 / 9;
const GAP = 8;
const STRIP_MAX_H = 132; // px: the strip under the stage
const STRIP_SHARE = 0.22; // of the height, at most

export class Grid {
  constructor(container) {
    this.container = container;
    this.tiles = new Map(); // id -> Tile
    this.stageId = null;
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
    if (this.stageId === id) this.stageId = null;
    this.layout();
  }

  clear() {
    for (const id of [...this.tiles.keys()]) this.remove(id);
  }

  /** Put the tile `id` on the stage (null: the plain grid). */
  setStage(id) {
    const next = id && this.tiles.has(id) ? id : null;
    if (next === this.stageId) return;
    this.stageId = next;
    this.layout();
  }

  /** Size tiles for the current count and container size. */
  layout() {
    const { width, height } = this.container.getBoundingClientRect();
    this.container.dataset.count = String(this.tiles.size);
    const staged = Boolean(this.stageId) && this.tiles.size > 1;
    this.container.classList.toggle("staged", staged);
    for (const [id, tile] of this.tiles) tile.root.classList.toggle("on-stage", staged && id === this.stageId);
    if (!width || !height) return;
    if (staged) {
      const k = this.tiles.size - 1;
      const stripH = Math.min(STRIP_MAX_H, height * STRIP_SHARE);
      const stripW = Math.min(stripH * ASPECT, (width - GAP * (k - 1)) / k);
      const stageW = Math.min(width, (height - stripW / ASPECT - GAP) * ASPECT);
      this.container.style.setProperty("--stage-w", `${Math.floor(stageW)}px`);
      this.container.style.setProperty("--tile-w", `${Math.floor(stripW)}px`);
      return;
    }
    const n = Math.max(1, this.tiles.size);
    let best = { cols: 1, w: 0 };
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      const w = Math.min((width - GAP * (cols - 1)) / cols, ((height - GAP * (rows - 1)) / rows) * ASPECT);
      if (w > best.w) best = { cols, w };
    }
    this.container.style.setProperty("--tile-w", `${Math.floor(best.w)}px`);
  }

  destroy() {
    this._observer.disconnect();
    this.clear();
  }
}
