// provider.mjs - a real OpenID provider for lxcm's integration tests:
// the npm package oidc-provider (an OpenID-certified implementation),
// with its development login form (any password), over HTTPS with a
// certificate the test makes.
//
// Environment: PORT, CERT, KEY (PEM files), REDIRECT_URI (lxcm's
// callback), CLIENT_SECRET (empty: a public client), ACCESS_TTL (seconds).
// People and their groups:
//   alice  lxcm-admins        olivia lxcm-operators
//   victor lxcm-viewers       nora   (no group)
// POST /test/groups?user=U&groups=a,b changes a person's groups (what an
// IdP administrator does), so a test can see a refresh pick it up;
// POST /test/delete?user=U removes a person (their refresh fails).
import fs from 'node:fs';
import https from 'node:https';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `https://127.0.0.1:${port}`;
const groups = {
  alice: ['lxcm-admins'],
  olivia: ['lxcm-operators', 'staff'],
  victor: ['lxcm-viewers'],
  nora: [],
};

const deleted = new Set();

const client = {
  client_id: 'lxcm',
  redirect_uris: [process.env.REDIRECT_URI],
  grant_types: ['authorization_code', 'refresh_token',
    'urn:ietf:params:oauth:grant-type:device_code'],
  response_types: ['code'],
};
if (process.env.CLIENT_SECRET) {
  client.client_secret = process.env.CLIENT_SECRET;
  client.token_endpoint_auth_method = 'client_secret_basic';
} else {
  client.token_endpoint_auth_method = 'none';
}

const configuration = {
  clients: [client],
  async findAccount(ctx, id) {
    if (deleted.has(id)) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@example.com`,
          email_verified: true,
          name: id[0].toUpperCase() + id.slice(1),
          groups: groups[id] || [],
        };
      },
    };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'groups'],
  },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
  },
  async issueRefreshToken(ctx, c) {
    return c.grantTypeAllowed('refresh_token');
  },
  ttl: {
    AccessToken: Number(process.env.ACCESS_TTL || 3600),
    IdToken: 3600,
    RefreshToken: 86400,
  },
  cookies: { keys: ['lxcm-test-cookie-key'] },
};

const provider = new Provider(issuer, configuration);
provider.use(async (ctx, next) => {
  if (ctx.path === '/test/groups' && ctx.method === 'POST') {
    const user = ctx.query.user;
    groups[user] = ctx.query.groups ? String(ctx.query.groups).split(',') : [];
    ctx.body = { user, groups: groups[user] };
    return;
  }
  if (ctx.path === '/test/delete' && ctx.method === 'POST') {
    deleted.add(ctx.query.user);
    ctx.body = { deleted: ctx.query.user };
    return;
  }
  await next();
});

https.createServer({
  key: fs.readFileSync(process.env.KEY),
  cert: fs.readFileSync(process.env.CERT),
}, provider.callback()).listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ready at ${issuer}`);
});
