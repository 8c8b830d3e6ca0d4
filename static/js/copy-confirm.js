// Copy a token shown once (data-copy), and confirm a destructive form button (data-confirm) before posting.

for (const button of document.querySelectorAll('[data-copy]')) {
  button.addEventListener('click', async () => {
    const input = document.querySelector(button.dataset.copy);
    const feedback = button.parentElement.querySelector('.copy-feedback');
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
      feedback.textContent = 'Copied.';
    } catch {
      // No clipboard access (plain http on another host): the text is selected for Ctrl+C.
      feedback.textContent = 'Press Ctrl+C to copy the selected token.';
    }
  });
}

for (const button of document.querySelectorAll('button[data-confirm]')) {
  button.form.addEventListener('submit', (event) => {
    if (!window.confirm(button.dataset.confirm)) event.preventDefault();
  });
}
