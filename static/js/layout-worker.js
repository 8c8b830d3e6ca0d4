// Runs layout.js off the main thread: the page posts {id, scene} and gets {id, positions} back.

import { layoutScene } from './layout.js';

self.addEventListener('message', (event) => {
  const { id, scene } = event.data;
  self.postMessage({ id, positions: layoutScene(scene) });
});
