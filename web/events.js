// A tiny typed-event helper on top of the platform's EventTarget.

export class Emitter extends EventTarget {
  /** Dispatch `type` with `detail`. */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Listen to `type`; `fn` gets the detail. Returns a function that stops listening. */
  on(type, fn) {
    const listener = (event) => fn(event.detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }
}
