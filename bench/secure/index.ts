export { benchmark } from './aead.js';
