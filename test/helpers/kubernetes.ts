// What Kubernetes puts in every pod's environment for a Service named `wharf` on port 5000: the
// docker-links-style variables (see the Kubernetes "Service" docs, "Environment variables").
export const KUBERNETES_SERVICE_ENV: Readonly<Record<string, string>> = {
  WHARF_PORT: 'tcp://10.96.0.12:5000',
  WHARF_PORT_5000_TCP: 'tcp://10.96.0.12:5000',
  WHARF_PORT_5000_TCP_ADDR: '10.96.0.12',
  WHARF_PORT_5000_TCP_PORT: '5000',
  WHARF_PORT_5000_TCP_PROTO: 'tcp',
  WHARF_SERVICE_HOST: '10.96.0.12',
  WHARF_SERVICE_PORT: '5000',
};
