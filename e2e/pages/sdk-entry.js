// The test page's script: the real supertokens-website 4.2.0, unchanged,
// with its fetch interception on (the default when init is called directly).
import sdkModule from 'supertokens-website';

// The package is CommonJS with `exports.default = AuthHttpRequest`. Under
// Node's interop rules (this package is "type": "module"), the default
// import is the whole `module.exports`, so take its `default`.
const SuperTokens = typeof sdkModule.init === 'function' ? sdkModule : sdkModule.default;

SuperTokens.init({
  refreshTokenUrl: '/refresh/',
  sessionExpiredStatusCode: 401,
});

window.SuperTokens = SuperTokens;
window.sdkReady = true;
document.getElementById('status').textContent = 'supertokens-website initialised';
