// How clients reach a registry: its hostname, on the port this console was served from (the
// gateway serves every registry and the console on the same listener).

export function registryHost(hostname) {
  return location.port ? `${hostname}:${location.port}` : hostname;
}

// ctr needs --plain-http to talk to a registry without TLS; docker allows plain HTTP only to
// registries listed as insecure (or on 127.0.0.0/8).
export function plainHttp() {
  return location.protocol === "http:";
}
