// Public surface of the IKEv2 engine library (DESIGN.md §2): the facade, its ports and config.
export * from './engine.js';
export * from './ports.js';
