// The portal's only script of its own: the copy button beside a download link.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  const said = button.parentElement.querySelector(".copied");
  try {
    await navigator.clipboard.writeText(field.value);
    if (said) said.textContent = "Copied";
  } catch {
    field.select(); // no clipboard access (plain HTTP, or refused): selected for Ctrl+C
    if (said) said.textContent = "Selected: press Ctrl+C to copy";
  }
});
