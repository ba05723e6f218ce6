// The owner's "Lock room" dialog: asks for the password that newcomers will need.

import { $ } from "./dom.js";

/**
 * Ask for a password and call `lock(password)`; resolves true once locked, false if the
 * owner cancelled. Errors from `lock` are shown in the dialog, which stays open.
 */
export function askToLock(lock) {
  const dialog = $("lock-dialog");
  const form = $("lock-form");
  const input = $("lock-password");
  const error = $("lock-error");
  const cancel = $("lock-cancel");
  const confirm = $("lock-confirm");
  input.value = "";
  input.removeAttribute("aria-invalid");
  error.textContent = "";
  return new Promise((resolve) => {
    const done = (result) => {
      form.removeEventListener("submit", onSubmit);
      cancel.removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      resolve(result);
    };
    const onCancel = (event) => {
      event.preventDefault();
      done(false);
    };
    const onSubmit = async (event) => {
      event.preventDefault();
      const password = input.value;
      if (!password) {
        error.textContent = "Type a password: people who join from now on will need it.";
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      confirm.disabled = true;
      try {
        await lock(password);
        done(true);
      } catch (err) {
        error.textContent = `Could not lock the room: ${err.message}`;
      } finally {
        confirm.disabled = false;
      }
    };
    form.addEventListener("submit", onSubmit);
    cancel.addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    input.focus();
  });
}
