// supertokens-website 4.2.0 reads `process.env.TEST_MODE` (its processState
// module). Its authors bundled it with webpack 4, which provides a `process`
// object in browsers; esbuild does not, so the bundle injects this one, as
// webpack 4 did. The SDK's code is not changed.
export const process = { env: {} };
