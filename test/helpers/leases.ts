/** Lease values for tests, byte-exact as flanneld writes them (FLANNEL-COMPAT §3.2: Go json.Marshal of LeaseAttrs). */

/** vxlan BackendData for VNI 1. */
export function vxlanBackendData(vtepMAC: string): string {
  return `{"VNI":1,"VtepMAC":"${vtepMAC}"}`
}

/** The tests' MAC convention: 0e:aa:bb:cc:dd: and the last two decimal digits of the IP's last octet. */
export function macForIp(publicIP: string): string {
  return `0e:aa:bb:cc:dd:${publicIP.split('.')[3].padStart(2, '0').slice(-2)}`
}

/** An IPv4 vxlan lease value for VNI 1. */
export function vxlanLeaseValue(publicIP: string, vtepMAC = macForIp(publicIP)): string {
  return `{"PublicIP":"${publicIP}","PublicIPv6":null,"BackendType":"vxlan","BackendData":${vxlanBackendData(vtepMAC)}}`
}
