// The test page's script for the current SDK: the real supertokens-website
// 20.x (npm alias `supertokens-website-20`), unchanged, initialised as its
// documentation says, in the transfer mode the page's URL asks for
// (`?mode=cookie` or `?mode=header`).
import sdkModule from 'supertokens-website-20';

// CommonJS with `exports.default` and named exports: under Node's interop
// rules the default import is the whole `module.exports`.
const SuperTokens = typeof sdkModule.init === 'function' ? sdkModule : sdkModule.default;

const mode = new URLSearchParams(location.search).get('mode') === 'header' ? 'header' : 'cookie';
// The SDK's fetch before its interception, for requests made "without the
// SDK" in the tests.
window.originalFetch = window.fetch.bind(window);
window.sdkEvents = [];

SuperTokens.init({
  apiDomain: location.origin,
  apiBasePath: '/auth',
  tokenTransferMethod: mode,
  onHandleEvent: (event) => window.sdkEvents.push(event.action),
});

window.SuperTokens = SuperTokens;
window.sdkMode = mode;
window.sdkReady = true;
document.getElementById('status').textContent = `supertokens-website 20.x initialised (${mode} mode)`;
