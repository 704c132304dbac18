export { benchmark } from './stream.js';
