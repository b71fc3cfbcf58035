// The N-API binding: converts JavaScript values to the plain C API in include/edgeplane.h and
// back. Errors become JS Errors whose message starts with "[CODE] " (see firmware/errors.ts).
// Nothing here runs on a worker lcore.
#include <arpa/inet.h>
#include <napi.h>

#include <cstring>

#include <string>
#include <vector>

#include "edgeplane.h"
#include "sd_notify.h"

namespace {

[[noreturn]] void Throw(Napi::Env env, const ep_error &err) {
  throw Napi::Error::New(env, std::string("[") + ep_errcode_name(err.code) + "] " + err.msg);
}

[[noreturn]] void ThrowInvalid(Napi::Env env, const std::string &msg) {
  throw Napi::Error::New(env, "[EINVAL] " + msg);
}

void Check(Napi::Env env, int rc, const ep_error &err) {
  if (rc != 0) Throw(env, err);
}

uint32_t U32(const Napi::Object &o, const char *name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) ThrowInvalid(o.Env(), std::string(name) + " must be a number");
  return v.As<Napi::Number>().Uint32Value();
}

uint32_t Arg32(const Napi::CallbackInfo &info, size_t i, const char *what) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowInvalid(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Uint32Value();
}

// A 16-byte IPv6 address from a Buffer property; absent (undefined) leaves out as it is.
void Addr6(const Napi::Object &o, const char *name, uint8_t out[16]) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return;
  if (!v.IsBuffer() || v.As<Napi::Buffer<uint8_t>>().Length() != 16)
    ThrowInvalid(o.Env(), std::string(name) + " must be a 16-byte Buffer");
  memcpy(out, v.As<Napi::Buffer<uint8_t>>().Data(), 16);
}

const uint8_t *ArgAddr6(const Napi::CallbackInfo &info, size_t i, const char *what) {
  if (info.Length() <= i || !info[i].IsBuffer() || info[i].As<Napi::Buffer<uint8_t>>().Length() != 16)
    ThrowInvalid(info.Env(), std::string(what) + " must be a 16-byte Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>().Data();
}

// A 6-byte MAC Buffer argument that may be left out (nullptr).
const uint8_t *OptionalMac(const Napi::CallbackInfo &info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return nullptr;
  if (!info[i].IsBuffer() || info[i].As<Napi::Buffer<uint8_t>>().Length() != 6) ThrowInvalid(info.Env(), "MAC must be a 6-byte Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>().Data();
}

uint16_t ArgPort(const Napi::CallbackInfo &info, size_t i) {
  uint32_t p = Arg32(info, i, "port");
  if (p > 0xffff) ThrowInvalid(info.Env(), "port id out of range");
  return static_cast<uint16_t>(p);
}

ep_flow_key KeyFromBuffer(Napi::Env env, const Napi::Value &v) {
  if (!v.IsBuffer()) ThrowInvalid(env, "flow key must be a Buffer");
  auto buf = v.As<Napi::Buffer<uint8_t>>();
  if (buf.Length() != sizeof(ep_flow_key)) ThrowInvalid(env, "flow key must be 40 bytes");
  ep_flow_key key;
  memcpy(&key, buf.Data(), sizeof(key));
  return key;
}

// Interest criteria: {mask, data, copy, hold}, each a 16-bit set of interest bits.
ep_interest InterestFromObject(Napi::Env env, const Napi::Value &v) {
  if (!v.IsObject()) ThrowInvalid(env, "interest must be an object");
  Napi::Object o = v.As<Napi::Object>();
  ep_interest c{};
  uint32_t fields[4] = {U32(o, "mask"), U32(o, "data"), U32(o, "copy"), U32(o, "hold")};
  for (uint32_t f : fields)
    if (f > 0xffff) ThrowInvalid(env, "interest bit sets are 16 bits");
  c.mask = static_cast<uint16_t>(fields[0]);
  c.data = static_cast<uint16_t>(fields[1]);
  c.copy = static_cast<uint16_t>(fields[2]);
  c.hold = static_cast<uint16_t>(fields[3]);
  return c;
}

Napi::Object InterestToObject(Napi::Env env, const ep_interest &c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("mask", c.mask);
  o.Set("data", c.data);
  o.Set("copy", c.copy);
  o.Set("hold", c.hold);
  return o;
}

// QoS marks {dscp?, pcp?, vlanPush?, vlanPop?, mplsPush?, mplsPop?} as EP_ACT_F_* flags and values.
ep_qos QosFromObject(Napi::Env env, const Napi::Value &v) {
  ep_qos q{};
  if (v.IsUndefined()) return q;
  if (!v.IsObject()) ThrowInvalid(env, "qos must be an object");
  Napi::Object o = v.As<Napi::Object>();
  auto has = [&](const char *name) { return o.Get(name).IsNumber(); };
  uint32_t dscp = has("dscp") ? U32(o, "dscp") : 0, pcp = has("pcp") ? U32(o, "pcp") : 0;
  uint32_t tci = has("vlanPush") ? U32(o, "vlanPush") : 0;
  if (dscp > 63 || pcp > 7 || tci > 0xffff) ThrowInvalid(env, "qos: dscp 0-63, pcp 0-7, vlanPush a 16-bit TCI");
  if (has("dscp")) q.flags |= EP_ACT_F_DSCP, q.dscp = static_cast<uint8_t>(dscp);
  if (has("pcp")) q.flags |= EP_ACT_F_PCP, q.pcp = static_cast<uint8_t>(pcp);
  if (has("vlanPush")) q.flags |= EP_ACT_F_VLAN_PUSH, q.vlan_tci = static_cast<uint16_t>(tci);
  if (o.Get("vlanPop").ToBoolean().Value()) q.flags |= EP_ACT_F_VLAN_POP;
  if (has("mplsPush")) q.flags |= EP_ACT_F_MPLS_PUSH, q.mpls_label = U32(o, "mplsPush");
  if (o.Get("mplsPop").ToBoolean().Value()) q.flags |= EP_ACT_F_MPLS_POP;
  return q;
}

ep_action ActionFromObject(Napi::Env env, const Napi::Value &v) {
  if (!v.IsObject()) ThrowInvalid(env, "action must be an object");
  Napi::Object o = v.As<Napi::Object>();
  ep_action a{};
  a.type = static_cast<uint8_t>(U32(o, "type"));
  a.dispatch = static_cast<uint8_t>(U32(o, "dispatch"));
  a.out_port = static_cast<uint16_t>(U32(o, "outPort"));
  a.nat_src_ip = htonl(U32(o, "natSrcIp"));
  a.nat_dst_ip = htonl(U32(o, "natDstIp"));
  a.nat_src_port = htons(static_cast<uint16_t>(U32(o, "natSrcPort")));
  a.nat_dst_port = htons(static_cast<uint16_t>(U32(o, "natDstPort")));
  a.forward_ip = htonl(U32(o, "forwardIp"));
  a.service_id = U32(o, "serviceId");
  a.gue_port = htons(static_cast<uint16_t>(U32(o, "guePort")));
  Napi::Value qos = o.Get("qos");
  if (qos.IsObject()) {
    Napi::Object q = qos.As<Napi::Object>();
    auto has = [&](const char *name) { return q.Get(name).IsNumber(); };
    if (has("dscp")) a.flags |= EP_ACT_F_DSCP, a.qos_dscp = static_cast<uint8_t>(U32(q, "dscp"));
    if (has("pcp")) a.flags |= EP_ACT_F_PCP, a.qos_pcp = static_cast<uint8_t>(U32(q, "pcp"));
    if (has("vlanPush")) a.flags |= EP_ACT_F_VLAN_PUSH, a.qos_vlan_tci = static_cast<uint16_t>(U32(q, "vlanPush"));
    if (q.Get("vlanPop").ToBoolean().Value()) a.flags |= EP_ACT_F_VLAN_POP;
    if (has("mplsPush")) a.flags |= EP_ACT_F_MPLS_PUSH, a.qos_mpls_label = U32(q, "mplsPush");
    if (q.Get("mplsPop").ToBoolean().Value()) a.flags |= EP_ACT_F_MPLS_POP;
  }
  Napi::Value mac = o.Get("nextHopMac");
  if (mac.IsBuffer()) {
    auto b = mac.As<Napi::Buffer<uint8_t>>();
    if (b.Length() != 6) ThrowInvalid(env, "nextHopMac must be 6 bytes");
    memcpy(a.next_hop_mac, b.Data(), 6);
    a.flags |= EP_ACT_F_NEXT_HOP;
  }
  return a;
}

Napi::Object ActionToObject(Napi::Env env, const ep_action &a) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", a.type);
  o.Set("dispatch", a.dispatch);
  o.Set("outPort", a.out_port);
  o.Set("natSrcIp", ntohl(a.nat_src_ip));
  o.Set("natDstIp", ntohl(a.nat_dst_ip));
  o.Set("natSrcPort", ntohs(a.nat_src_port));
  o.Set("natDstPort", ntohs(a.nat_dst_port));
  o.Set("forwardIp", ntohl(a.forward_ip));
  o.Set("serviceId", a.service_id);
  o.Set("guePort", ntohs(a.gue_port));
  Napi::Object q = Napi::Object::New(env);
  if (a.flags & EP_ACT_F_DSCP) q.Set("dscp", a.qos_dscp);
  if (a.flags & EP_ACT_F_PCP) q.Set("pcp", a.qos_pcp);
  if (a.flags & EP_ACT_F_VLAN_PUSH) q.Set("vlanPush", a.qos_vlan_tci);
  if (a.flags & EP_ACT_F_VLAN_POP) q.Set("vlanPop", true);
  if (a.flags & EP_ACT_F_MPLS_PUSH) q.Set("mplsPush", a.qos_mpls_label);
  if (a.flags & EP_ACT_F_MPLS_POP) q.Set("mplsPop", true);
  o.Set("qos", q);
  if (a.flags & EP_ACT_F_NEXT_HOP) o.Set("nextHopMac", Napi::Buffer<uint8_t>::Copy(env, a.next_hop_mac, 6));
  return o;
}

Napi::Value EalInit(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) ThrowInvalid(env, "EAL arguments must be an array of strings");
  Napi::Array arr = info[0].As<Napi::Array>();
  // rte_eal_init keeps pointers into argv for the life of the process
  static std::vector<std::string> storage;
  static std::vector<char *> argv;
  storage.clear();
  for (uint32_t i = 0; i < arr.Length(); i++) storage.push_back(arr.Get(i).ToString().Utf8Value());
  argv.clear();
  for (auto &s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  ep_error err{};
  Check(env, ep_eal_init(static_cast<int>(storage.size()), argv.data(), &err), err);
  return env.Undefined();
}

Napi::Value Create(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) ThrowInvalid(env, "options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  ep_config cfg{};
  cfg.affinity_capacity = U32(o, "affinityCapacity");
  cfg.flow_capacity_per_worker = U32(o, "flowCapacityPerWorker");
  cfg.mbufs_per_worker = U32(o, "mbufsPerWorker");
  cfg.miss_policy = static_cast<uint8_t>(U32(o, "missPolicy"));
  Napi::Value t = o.Get("timeouts");
  if (!t.IsArray() || t.As<Napi::Array>().Length() != EP_TO__COUNT) ThrowInvalid(env, "timeouts must be 6 numbers");
  for (uint32_t i = 0; i < EP_TO__COUNT; i++)
    cfg.timeouts_s[i] = t.As<Napi::Array>().Get(i).As<Napi::Number>().Uint32Value();
  cfg.hold_capacity_per_worker = U32(o, "holdCapacityPerWorker");
  cfg.hold_timeout_ms = U32(o, "holdTimeoutMs");
  ep_error err{};
  Check(env, ep_create(&cfg, &err), err);
  return env.Undefined();
}

Napi::Value PortCount(const Napi::CallbackInfo &info) { return Napi::Number::New(info.Env(), ep_port_count()); }

Napi::Value PortInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct ep_port_info p{};
  ep_error err{};
  Check(env, ep_port_info(ArgPort(info, 0), &p, &err), err);
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", info[0]);
  o.Set("name", p.name);
  o.Set("driver", p.driver);
  o.Set("mac", Napi::Buffer<uint8_t>::Copy(env, p.mac, 6));
  o.Set("rxQueues", p.rx_queues);
  o.Set("txQueues", p.tx_queues);
  o.Set("rss", p.rss != 0);
  o.Set("linkUp", p.link_up != 0);
  o.Set("speedMbps", p.speed_mbps);
  return o;
}

Napi::Value PortConfigure(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsObject()) ThrowInvalid(env, "port config must be an object");
  Napi::Object o = info[1].As<Napi::Object>();
  ep_error err{};
  Check(env,
        ep_port_configure(ArgPort(info, 0), htonl(U32(o, "address")), static_cast<uint8_t>(U32(o, "prefixLength")),
                          o.Get("promiscuous").ToBoolean().Value(), &err),
        err);
  return env.Undefined();
}

Napi::Value LocalAddressAdd(const Napi::CallbackInfo &info) {
  ep_error err{};
  Check(info.Env(), ep_local_addr_add(ArgPort(info, 0), htonl(Arg32(info, 1, "ip")), &err), err);
  return info.Env().Undefined();
}

Napi::Value LocalAddressRemove(const Napi::CallbackInfo &info) {
  ep_error err{};
  Check(info.Env(), ep_local_addr_del(ArgPort(info, 0), htonl(Arg32(info, 1, "ip")), &err), err);
  return info.Env().Undefined();
}

Napi::Value LocalAddressArp(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  const uint8_t *mac = OptionalMac(info, 3);
  ep_error err{};
  Check(env,
        ep_local_addr_arp(ArgPort(info, 0), htonl(Arg32(info, 1, "ip")), static_cast<ep_arp_answer>(Arg32(info, 2, "answer")),
                          mac, &err),
        err);
  return env.Undefined();
}

Napi::Value PortOwnMacOnly(const Napi::CallbackInfo &info) {
  ep_error err{};
  Check(info.Env(), ep_port_own_mac_only(ArgPort(info, 0), info.Length() > 1 && info[1].ToBoolean().Value(), &err), err);
  return info.Env().Undefined();
}

Napi::Value RouteAdd(const Napi::CallbackInfo &info) {
  ep_error err{};
  uint32_t len = Arg32(info, 1, "prefix length");
  if (len > 32) ThrowInvalid(info.Env(), "prefix length above 32");
  Check(info.Env(),
        ep_route_add(htonl(Arg32(info, 0, "prefix")), static_cast<uint8_t>(len), ArgPort(info, 2),
                     htonl(Arg32(info, 3, "gateway")), &err),
        err);
  return info.Env().Undefined();
}

Napi::Value RouteRemove(const Napi::CallbackInfo &info) {
  ep_error err{};
  uint32_t len = Arg32(info, 1, "prefix length");
  if (len > 32) ThrowInvalid(info.Env(), "prefix length above 32");
  Check(info.Env(), ep_route_del(htonl(Arg32(info, 0, "prefix")), static_cast<uint8_t>(len), &err), err);
  return info.Env().Undefined();
}

Napi::Value NeighborSet(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[2].IsBuffer() || info[2].As<Napi::Buffer<uint8_t>>().Length() != 6)
    ThrowInvalid(env, "MAC must be a 6-byte Buffer");
  ep_error err{};
  Check(env,
        ep_neighbor_set(htonl(Arg32(info, 0, "ip")), ArgPort(info, 1), info[2].As<Napi::Buffer<uint8_t>>().Data(),
                        &err),
        err);
  return env.Undefined();
}

Napi::Value Resolve(const Napi::CallbackInfo &info) {
  ep_error err{};
  Check(info.Env(), ep_resolve(htonl(Arg32(info, 0, "ip")), &err), err);
  return info.Env().Undefined();
}

Napi::Value PortConfigure6(const Napi::CallbackInfo &info) {
  ep_error err{};
  uint32_t len = Arg32(info, 2, "prefix length");
  if (len > 128) ThrowInvalid(info.Env(), "IPv6 prefix length above 128");
  Check(info.Env(), ep_port_configure6(ArgPort(info, 0), ArgAddr6(info, 1, "address"), static_cast<uint8_t>(len), &err),
        err);
  return info.Env().Undefined();
}

Napi::Value LocalAddress6Add(const Napi::CallbackInfo &info) {
  ep_error err{};
  Check(info.Env(), ep_local_addr6_add(ArgPort(info, 0), ArgAddr6(info, 1, "ip"), &err), err);
  return info.Env().Undefined();
}

Napi::Value LocalAddress6Ndp(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  const uint8_t *mac = OptionalMac(info, 3);
  ep_error err{};
  Check(env,
        ep_local_addr6_ndp(ArgPort(info, 0), ArgAddr6(info, 1, "ip"), static_cast<ep_arp_answer>(Arg32(info, 2, "answer")),
                           mac, &err),
        err);
  return env.Undefined();
}

Napi::Value LocalAddress6Remove(const Napi::CallbackInfo &info) {
  ep_error err{};
  Check(info.Env(), ep_local_addr6_del(ArgPort(info, 0), ArgAddr6(info, 1, "ip"), &err), err);
  return info.Env().Undefined();
}

Napi::Value Route6Add(const Napi::CallbackInfo &info) {
  ep_error err{};
  uint32_t len = Arg32(info, 1, "prefix length");
  if (len > 128) ThrowInvalid(info.Env(), "IPv6 prefix length above 128");
  Check(info.Env(),
        ep_route6_add(ArgAddr6(info, 0, "prefix"), static_cast<uint8_t>(len), ArgPort(info, 2),
                      ArgAddr6(info, 3, "gateway"), &err),
        err);
  return info.Env().Undefined();
}

Napi::Value Route6Remove(const Napi::CallbackInfo &info) {
  ep_error err{};
  uint32_t len = Arg32(info, 1, "prefix length");
  if (len > 128) ThrowInvalid(info.Env(), "IPv6 prefix length above 128");
  Check(info.Env(), ep_route6_del(ArgAddr6(info, 0, "prefix"), static_cast<uint8_t>(len), &err), err);
  return info.Env().Undefined();
}

Napi::Value Neighbor6Set(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[2].IsBuffer() || info[2].As<Napi::Buffer<uint8_t>>().Length() != 6)
    ThrowInvalid(env, "MAC must be a 6-byte Buffer");
  ep_error err{};
  Check(env,
        ep_neighbor6_set(ArgAddr6(info, 0, "ip"), ArgPort(info, 1), info[2].As<Napi::Buffer<uint8_t>>().Data(), &err),
        err);
  return env.Undefined();
}

Napi::Value Resolve6(const Napi::CallbackInfo &info) {
  ep_error err{};
  Check(info.Env(), ep_resolve6(ArgAddr6(info, 0, "ip"), &err), err);
  return info.Env().Undefined();
}

Napi::Value Start(const Napi::CallbackInfo &info) {
  ep_error err{};
  Check(info.Env(), ep_start(&err), err);
  return info.Env().Undefined();
}

Napi::Value Stop(const Napi::CallbackInfo &info) {
  ep_error err{};
  Check(info.Env(), ep_stop(&err), err);
  return info.Env().Undefined();
}

Napi::Value Shutdown(const Napi::CallbackInfo &info) {
  ep_shutdown();
  return info.Env().Undefined();
}

Napi::Value AffinityAdd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3) ThrowInvalid(env, "affinityAdd(key, action, ttl)");
  ep_flow_key key = KeyFromBuffer(env, info[0]);
  ep_action act = ActionFromObject(env, info[1]);
  ep_error err{};
  ep_affinity_options opts{};
  ep_seq_adjust seq{};
  ep_interest interest{};
  uint8_t nat6_src[16] = {0}, nat6_dst[16] = {0};
  if (info.Length() > 3 && info[3].IsObject()) {
    Napi::Object s = info[3].As<Napi::Object>();
    seq = {U32(s, "seqDelta"), U32(s, "initialSeq"), U32(s, "ackDelta"), U32(s, "initialAck")};
    opts.seq = &seq;
  }
  // extras: {interest?, statsIp?, nat6Src?, nat6Dst?}
  if (info.Length() > 4 && info[4].IsObject()) {
    Napi::Object x = info[4].As<Napi::Object>();
    if (x.Has("interest")) {
      interest = InterestFromObject(env, x.Get("interest"));
      opts.interest = &interest;
    }
    if (x.Has("statsIp")) opts.stats_ip = htonl(U32(x, "statsIp"));
    Addr6(x, "nat6Src", nat6_src);
    Addr6(x, "nat6Dst", nat6_dst);
    opts.nat6_src = nat6_src;
    opts.nat6_dst = nat6_dst;
  }
  Check(env, ep_affinity_add_opts(&key, &act, Arg32(info, 2, "ttl"), &opts, &err), err);
  return env.Undefined();
}

Napi::Value AffinityRemove(const Napi::CallbackInfo &info) {
  if (info.Length() < 1) ThrowInvalid(info.Env(), "affinityRemove(key)");
  ep_flow_key key = KeyFromBuffer(info.Env(), info[0]);
  return Napi::Boolean::New(info.Env(), ep_affinity_del(&key) == 1);
}

Napi::Value AffinityList(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint32_t max = Arg32(info, 0, "max");
  bool learned = info.Length() > 1 && info[1].ToBoolean().Value();
  std::vector<ep_affinity_info> rows(max);
  uint32_t n = ep_affinity_list(rows.data(), max, learned);
  Napi::Array out = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) {
    const ep_affinity_info &r = rows[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("key", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t *>(&r.key), sizeof(r.key)));
    o.Set("action", ActionToObject(env, r.action));
    o.Set("ttlSeconds", r.ttl_s);
    if (r.seq.seq_delta || r.seq.initial_seq || r.seq.ack_delta || r.seq.initial_ack) {
      Napi::Object s = Napi::Object::New(env);
      s.Set("seqDelta", r.seq.seq_delta);
      s.Set("initialSeq", r.seq.initial_seq);
      s.Set("ackDelta", r.seq.ack_delta);
      s.Set("initialAck", r.seq.initial_ack);
      o.Set("seqAdjust", s);
    }
    if (r.interest.mask) o.Set("interest", InterestToObject(env, r.interest));
    if (r.stats_ip) o.Set("statsIp", ntohl(r.stats_ip));
    static const uint8_t unchanged6[16] = {0};
    if (memcmp(r.nat6_src, unchanged6, 16)) o.Set("nat6Src", Napi::Buffer<uint8_t>::Copy(env, r.nat6_src, 16));
    if (memcmp(r.nat6_dst, unchanged6, 16)) o.Set("nat6Dst", Napi::Buffer<uint8_t>::Copy(env, r.nat6_dst, 16));
    o.Set("packets", static_cast<double>(r.packets));
    o.Set("bytes", static_cast<double>(r.bytes));
    o.Set("origin", r.origin);
    o.Set("tcpState", r.tcp_state);
    out.Set(i, o);
  }
  return out;
}

Napi::Value AffinityCount(const Napi::CallbackInfo &info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("manager", ep_affinity_count());
  o.Set("learned", ep_learned_count());
  return o;
}

Napi::Value WildcardsCommit(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) ThrowInvalid(env, "wildcards must be an array");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<ep_wildcard> rules(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsObject()) ThrowInvalid(env, "wildcard " + std::to_string(i) + " must be an object");
    Napi::Object o = v.As<Napi::Object>();
    ep_wildcard &w = rules[i];
    w.proto = static_cast<uint8_t>(U32(o, "protocol"));
    w.src_ip = htonl(U32(o, "srcIp"));
    w.src_mask = htonl(U32(o, "srcMask"));
    w.dst_ip = htonl(U32(o, "dstIp"));
    w.dst_mask = htonl(U32(o, "dstMask"));
    w.src_port = htons(static_cast<uint16_t>(U32(o, "srcPort")));
    w.dst_port = htons(static_cast<uint16_t>(U32(o, "dstPort")));
    w.precedence = U32(o, "precedence");
    w.id = U32(o, "id");
    w.action = ActionFromObject(env, o.Get("action"));
    if (!o.Get("family").IsUndefined()) w.family = static_cast<uint8_t>(U32(o, "family"));
    Addr6(o, "srcIp6", w.src_ip6);
    Addr6(o, "srcMask6", w.src_mask6);
    Addr6(o, "dstIp6", w.dst_ip6);
    Addr6(o, "dstMask6", w.dst_mask6);
    if (o.Has("interest")) w.interest = InterestFromObject(env, o.Get("interest"));
    w.cascade = o.Get("cascade").ToBoolean().Value() ? 1 : 0;
  }
  ep_error err{};
  Check(env, ep_wildcards_commit(rules.data(), static_cast<uint32_t>(rules.size()), &err), err);
  return env.Undefined();
}

Napi::Value ServiceSet(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) ThrowInvalid(env, "service must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  ep_service_conf conf{};
  conf.id = U32(o, "id");
  conf.vip = htonl(U32(o, "vip"));
  conf.port = htons(static_cast<uint16_t>(U32(o, "port")));
  conf.proto = static_cast<uint8_t>(U32(o, "protocol"));
  conf.table_size = U32(o, "tableSize");
  conf.mode = static_cast<uint8_t>(U32(o, "mode"));
  conf.algorithm = static_cast<uint8_t>(U32(o, "algorithm"));
  conf.snat_ip = htonl(U32(o, "snatIp"));
  uint32_t pmin = U32(o, "snatPortMin"), pmax = U32(o, "snatPortMax"), gue = U32(o, "guePort");
  if (pmin > 0xffff || pmax > 0xffff || gue > 0xffff) ThrowInvalid(env, "snat ports and guePort must be 0-65535");
  conf.snat_port_min = static_cast<uint16_t>(pmin);
  conf.snat_port_max = static_cast<uint16_t>(pmax);
  conf.gue_port = static_cast<uint16_t>(gue);
  if (!o.Get("family").IsUndefined()) conf.family = static_cast<uint8_t>(U32(o, "family"));
  Addr6(o, "vip6", conf.vip6);
  Addr6(o, "snatIp6", conf.snat_ip6);
  conf.qos_to_server = QosFromObject(env, o.Get("qosToServer"));
  conf.qos_to_client = QosFromObject(env, o.Get("qosToClient"));
  Napi::Value sv = o.Get("servers");
  if (!sv.IsArray()) ThrowInvalid(env, "servers must be an array");
  Napi::Array arr = sv.As<Napi::Array>();
  std::vector<ep_server> servers(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Object s = arr.Get(i).As<Napi::Object>();
    uint32_t weight = U32(s, "weight");
    if (weight > 0xffff) ThrowInvalid(env, "servers[" + std::to_string(i) + "].weight above 65535");
    servers[i].ip = htonl(U32(s, "ip"));
    servers[i].port = htons(static_cast<uint16_t>(U32(s, "port")));
    servers[i].weight = static_cast<uint16_t>(weight);
    Addr6(s, "ip6", servers[i].ip6);
  }
  ep_error err{};
  Check(env, ep_service_set(&conf, servers.data(), static_cast<uint32_t>(servers.size()), &err), err);
  return env.Undefined();
}

Napi::Value ServiceRemove(const Napi::CallbackInfo &info) {
  ep_error err{};
  Check(info.Env(), ep_service_del(Arg32(info, 0, "service id"), &err), err);
  return info.Env().Undefined();
}

Napi::Value ServiceFlushServer6(const Napi::CallbackInfo &info) {
  ep_error err{};
  uint32_t port = Arg32(info, 2, "server port");
  if (port > 0xffff) ThrowInvalid(info.Env(), "server port above 65535");
  Check(info.Env(),
        ep_service_flush_server6(Arg32(info, 0, "service id"), ArgAddr6(info, 1, "server ip"),
                                 htons(static_cast<uint16_t>(port)), &err),
        err);
  return info.Env().Undefined();
}

Napi::Value ServiceFlushServer(const Napi::CallbackInfo &info) {
  ep_error err{};
  uint32_t port = Arg32(info, 2, "server port");
  if (port > 0xffff) ThrowInvalid(info.Env(), "server port above 65535");
  Check(info.Env(),
        ep_service_flush_server(Arg32(info, 0, "service id"), htonl(Arg32(info, 1, "server ip")),
                                htons(static_cast<uint16_t>(port)), &err),
        err);
  return info.Env().Undefined();
}

Napi::Value FlowForget(const Napi::CallbackInfo &info) {
  if (info.Length() < 1) ThrowInvalid(info.Env(), "flowForget(key)");
  ep_flow_key key = KeyFromBuffer(info.Env(), info[0]);
  ep_error err{};
  Check(info.Env(), ep_flow_forget(&key, &err), err);
  return info.Env().Undefined();
}

Napi::Value Stats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  ep_lcore_counters total;
  ep_counters_total(&total);

  Napi::Array ports = Napi::Array::New(env);
  for (uint16_t p = 0; p < ep_port_count(); p++) {
    struct ep_port_counters pc;
    if (ep_port_counters(p, &pc) != 0) continue;
    Napi::Object po = Napi::Object::New(env);
    po.Set("id", p);
    po.Set("rxPackets", static_cast<double>(pc.rx_pkts));
    po.Set("rxBytes", static_cast<double>(pc.rx_bytes));
    po.Set("txPackets", static_cast<double>(pc.tx_pkts));
    po.Set("txBytes", static_cast<double>(pc.tx_bytes));
    po.Set("rxMissed", static_cast<double>(pc.rx_missed));
    po.Set("rxErrors", static_cast<double>(pc.rx_errors));
    po.Set("txErrors", static_cast<double>(pc.tx_errors));
    ports.Set(ports.Length(), po);
  }
  o.Set("ports", ports);

  Napi::Array lcores = Napi::Array::New(env);
  for (uint32_t i = 0; i < ep_worker_count(); i++) {
    ep_lcore_counters c;
    ep_worker_counters(i, &c);
    Napi::Object lo = Napi::Object::New(env);
    lo.Set("lcore", ep_worker_lcore(i));
    lo.Set("rxPackets", static_cast<double>(c.rx_pkts));
    lo.Set("rxBytes", static_cast<double>(c.rx_bytes));
    lo.Set("txPackets", static_cast<double>(c.tx_pkts));
    lo.Set("txBytes", static_cast<double>(c.tx_bytes));
    lo.Set("busyPolls", static_cast<double>(c.busy_polls));
    lo.Set("idlePolls", static_cast<double>(c.idle_polls));
    lcores.Set(i, lo);
  }
  o.Set("lcores", lcores);

  Napi::Object actions = Napi::Object::New(env);
  static const char *const action_names[EP_AC__COUNT] = {"forward", "drop", "punt", "service", "local"};
  for (int i = 0; i < EP_AC__COUNT; i++) actions.Set(action_names[i], static_cast<double>(total.actions[i]));
  o.Set("actions", actions);

  Napi::Object drops = Napi::Object::New(env);
  for (int i = 1; i < EP_DROP__COUNT; i++) drops.Set(ep_drop_reason_names[i], static_cast<double>(total.drops[i]));
  o.Set("drops", drops);

  Napi::Object lookups = Napi::Object::New(env);
  lookups.Set("managerHits", static_cast<double>(total.manager_hits));
  lookups.Set("learnedHits", static_cast<double>(total.learned_hits));
  lookups.Set("wildcardHits", static_cast<double>(total.wildcard_hits));
  lookups.Set("misses", static_cast<double>(total.misses));
  o.Set("lookups", lookups);

  Napi::Object flows = Napi::Object::New(env);
  flows.Set("manager", ep_affinity_count());
  flows.Set("learned", ep_learned_count());
  flows.Set("created", static_cast<double>(total.flows_created));
  flows.Set("expired", static_cast<double>(total.flows_expired));
  o.Set("flows", flows);
  o.Set("punted", static_cast<double>(total.punted));
  o.Set("unitForwarded", static_cast<double>(total.unit_forwarded));
  o.Set("injected", static_cast<double>(ep_injected_count()));
  Napi::Object interest = Napi::Object::New(env);
  interest.Set("matches", static_cast<double>(total.interest_matches));
  interest.Set("copies", static_cast<double>(total.interest_copies));
  interest.Set("held", static_cast<double>(total.held));
  interest.Set("released", static_cast<double>(total.hold_released));
  interest.Set("overflows", static_cast<double>(total.hold_overflows));
  interest.Set("lost", static_cast<double>(total.interest_lost));
  o.Set("interest", interest);

  std::vector<struct ep_server_counters> sc(EP_MAX_SERVERS * 4);
  uint32_t n = ep_server_counters(sc.data(), static_cast<uint32_t>(sc.size()));
  Napi::Array servers = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Object so = Napi::Object::New(env);
    so.Set("serviceId", sc[i].service_id);
    so.Set("ip", ntohl(sc[i].ip));
    static const uint8_t no_ip6[16] = {};
    if (memcmp(sc[i].ip6, no_ip6, 16) != 0) so.Set("ip6", Napi::Buffer<uint8_t>::Copy(env, sc[i].ip6, 16));
    so.Set("port", ntohs(sc[i].port));
    so.Set("flows", static_cast<double>(sc[i].flows));
    so.Set("packets", static_cast<double>(sc[i].packets));
    so.Set("bytes", static_cast<double>(sc[i].bytes));
    so.Set("weight", sc[i].weight);
    so.Set("handshakes", static_cast<double>(sc[i].handshakes));
    so.Set("handshakeMicros", static_cast<double>(sc[i].handshake_us_total));
    servers.Set(i, so);
  }
  o.Set("servers", servers);
  return o;
}

Napi::Value Poll(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint32_t max = Arg32(info, 0, "max");
  if (max > 1024) max = 1024;
  static std::vector<uint8_t> buffers;
  buffers.resize(static_cast<size_t>(max) * 2048);
  std::vector<ep_punted> out(max);
  for (uint32_t i = 0; i < max; i++) {
    out[i].data = buffers.data() + static_cast<size_t>(i) * 2048;
    out[i].cap = 2048;
  }
  uint32_t n = ep_poll(out.data(), max);
  Napi::Array arr = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("port", out[i].port);
    o.Set("reason", out[i].reason);
    o.Set("unit", out[i].unit);
    o.Set("interestFlags", out[i].interest_flags);
    o.Set("interestReasons", out[i].interest_reasons);
    o.Set("wildcardId", out[i].wildcard_id);
    uint32_t len = out[i].len < out[i].cap ? out[i].len : out[i].cap;
    o.Set("frame", Napi::Buffer<uint8_t>::Copy(env, out[i].data, len));
    arr.Set(i, o);
  }
  return arr;
}

Napi::Value ForwardIpCounters(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::vector<struct ep_forward_ip_counters> rows(EP_MAX_STATS_IPS);
  uint32_t n = ep_forward_ip_counters(rows.data(), EP_MAX_STATS_IPS);
  Napi::Array out = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("ip", ntohl(rows[i].ip));
    o.Set("packets", static_cast<double>(rows[i].packets));
    o.Set("bytes", static_cast<double>(rows[i].bytes));
    out.Set(i, o);
  }
  return out;
}

Napi::Value Inject(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsBuffer()) ThrowInvalid(env, "inject(port, Buffer)");
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  ep_error err{};
  Check(env, ep_inject(ArgPort(info, 0), buf.Data(), static_cast<uint32_t>(buf.Length()), &err), err);
  return env.Undefined();
}

Napi::Value InjectProcess(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsBuffer()) ThrowInvalid(env, "injectProcess(port, Buffer[, afterWildcardId])");
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  ep_error err{};
  auto len = static_cast<uint32_t>(buf.Length());
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsNumber()) ThrowInvalid(env, "afterWildcardId must be a number");
    Check(env, ep_inject_process_after(ArgPort(info, 0), buf.Data(), len, info[2].As<Napi::Number>().Uint32Value(), &err), err);
  } else {
    Check(env, ep_inject_process(ArgPort(info, 0), buf.Data(), len, &err), err);
  }
  return env.Undefined();
}

Napi::Value WorkUnitsSet(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer() || info[0].As<Napi::Buffer<uint8_t>>().Length() != EP_WORK_UNITS)
    ThrowInvalid(env, "work unit states must be a Buffer of " + std::to_string(EP_WORK_UNITS) + " bytes");
  const ep_unit_forwarding *forwarding = nullptr;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsBuffer() || info[1].As<Napi::Buffer<uint8_t>>().Length() != sizeof(ep_unit_forwarding))
      ThrowInvalid(env, "unit forwarding must be a Buffer of " + std::to_string(sizeof(ep_unit_forwarding)) + " bytes");
    forwarding = reinterpret_cast<const ep_unit_forwarding *>(info[1].As<Napi::Buffer<uint8_t>>().Data());
  }
  ep_error err{};
  Check(env, ep_work_units_set(info[0].As<Napi::Buffer<uint8_t>>().Data(), forwarding, &err), err);
  return env.Undefined();
}

Napi::Value WorkUnit(const Napi::CallbackInfo &info) {
  uint32_t port = Arg32(info, 1, "client port");
  if (port > 0xffff) ThrowInvalid(info.Env(), "client port above 65535");
  return Napi::Number::New(info.Env(),
                           ep_work_unit(htonl(Arg32(info, 0, "client ip")), htons(static_cast<uint16_t>(port))));
}

Napi::Value WorkUnit6(const Napi::CallbackInfo &info) {
  uint32_t port = Arg32(info, 1, "client port");
  if (port > 0xffff) ThrowInvalid(info.Env(), "client port above 65535");
  return Napi::Number::New(info.Env(), ep_work_unit6(ArgAddr6(info, 0, "client ip"), htons(static_cast<uint16_t>(port))));
}

Napi::Value ReplicationEnable(const Napi::CallbackInfo &info) {
  ep_replication_enable(info.Length() > 0 && info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

// Flow records travel as raw struct ep_flow_record bytes: the cluster ships them between members
// of the same build as they are (layout in include/edgeplane.h, size in flowRecordSize).
Napi::Value FlowEvents(const Napi::CallbackInfo &info) {
  uint32_t max = Arg32(info, 0, "max");
  if (max > 65536) max = 65536;
  std::vector<ep_flow_record> out(max);
  uint32_t n = ep_flow_events(out.data(), max);
  return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<const uint8_t *>(out.data()),
                                     n * sizeof(ep_flow_record));
}

Napi::Value FlowImport(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) ThrowInvalid(env, "flowImport(Buffer)");
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  if (buf.Length() % sizeof(ep_flow_record) != 0)
    ThrowInvalid(env, "flow records must be a multiple of " + std::to_string(sizeof(ep_flow_record)) + " bytes");
  uint32_t n = static_cast<uint32_t>(buf.Length() / sizeof(ep_flow_record));
  std::vector<ep_flow_record> records(n);
  memcpy(records.data(), buf.Data(), buf.Length());
  return Napi::Number::New(env, ep_flow_import(records.data(), n));
}

// Per work unit: packets since start and connections now, as two Float64Arrays of EP_WORK_UNITS.
Napi::Value UnitLoads(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::vector<ep_unit_load> loads(EP_WORK_UNITS);
  ep_unit_loads(loads.data());
  Napi::Float64Array packets = Napi::Float64Array::New(env, EP_WORK_UNITS);
  Napi::Float64Array flows = Napi::Float64Array::New(env, EP_WORK_UNITS);
  for (uint32_t u = 0; u < EP_WORK_UNITS; u++) {
    packets[u] = static_cast<double>(loads[u].packets);
    flows[u] = static_cast<double>(loads[u].flows);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("packets", packets);
  o.Set("flows", flows);
  return o;
}

Napi::Value FlowEventsLost(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), static_cast<double>(ep_flow_events_lost()));
}

// sdNotify(socketPath, state) -> 0, or a negative errno (systemd's notify socket is not a data-plane
// object: this needs no EAL and works before it starts).
Napi::Value SdNotify(const Napi::CallbackInfo &info) {
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) ThrowInvalid(info.Env(), "sdNotify(socketPath, state) takes two strings");
  std::string socket_path = info[0].As<Napi::String>().Utf8Value();
  std::string state = info[1].As<Napi::String>().Utf8Value();
  return Napi::Number::New(info.Env(), ep_sd_notify(socket_path.c_str(), state.c_str()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("ealInit", Napi::Function::New(env, EalInit));
  exports.Set("create", Napi::Function::New(env, Create));
  exports.Set("portCount", Napi::Function::New(env, PortCount));
  exports.Set("portInfo", Napi::Function::New(env, PortInfo));
  exports.Set("portConfigure", Napi::Function::New(env, PortConfigure));
  exports.Set("localAddressAdd", Napi::Function::New(env, LocalAddressAdd));
  exports.Set("localAddressArp", Napi::Function::New(env, LocalAddressArp));
  exports.Set("portOwnMacOnly", Napi::Function::New(env, PortOwnMacOnly));
  exports.Set("localAddressRemove", Napi::Function::New(env, LocalAddressRemove));
  exports.Set("routeAdd", Napi::Function::New(env, RouteAdd));
  exports.Set("routeRemove", Napi::Function::New(env, RouteRemove));
  exports.Set("neighborSet", Napi::Function::New(env, NeighborSet));
  exports.Set("resolve", Napi::Function::New(env, Resolve));
  exports.Set("portConfigure6", Napi::Function::New(env, PortConfigure6));
  exports.Set("localAddress6Add", Napi::Function::New(env, LocalAddress6Add));
  exports.Set("localAddress6Ndp", Napi::Function::New(env, LocalAddress6Ndp));
  exports.Set("localAddress6Remove", Napi::Function::New(env, LocalAddress6Remove));
  exports.Set("route6Add", Napi::Function::New(env, Route6Add));
  exports.Set("route6Remove", Napi::Function::New(env, Route6Remove));
  exports.Set("neighbor6Set", Napi::Function::New(env, Neighbor6Set));
  exports.Set("resolve6", Napi::Function::New(env, Resolve6));
  exports.Set("start", Napi::Function::New(env, Start));
  exports.Set("stop", Napi::Function::New(env, Stop));
  exports.Set("shutdown", Napi::Function::New(env, Shutdown));
  exports.Set("affinityAdd", Napi::Function::New(env, AffinityAdd));
  exports.Set("affinityRemove", Napi::Function::New(env, AffinityRemove));
  exports.Set("affinityList", Napi::Function::New(env, AffinityList));
  exports.Set("affinityCount", Napi::Function::New(env, AffinityCount));
  exports.Set("forwardIpCounters", Napi::Function::New(env, ForwardIpCounters));
  exports.Set("wildcardsCommit", Napi::Function::New(env, WildcardsCommit));
  exports.Set("serviceSet", Napi::Function::New(env, ServiceSet));
  exports.Set("serviceRemove", Napi::Function::New(env, ServiceRemove));
  exports.Set("serviceFlushServer", Napi::Function::New(env, ServiceFlushServer));
  exports.Set("serviceFlushServer6", Napi::Function::New(env, ServiceFlushServer6));
  exports.Set("flowForget", Napi::Function::New(env, FlowForget));
  exports.Set("stats", Napi::Function::New(env, Stats));
  exports.Set("poll", Napi::Function::New(env, Poll));
  exports.Set("inject", Napi::Function::New(env, Inject));
  exports.Set("injectProcess", Napi::Function::New(env, InjectProcess));
  exports.Set("workUnitsSet", Napi::Function::New(env, WorkUnitsSet));
  exports.Set("workUnit", Napi::Function::New(env, WorkUnit));
  exports.Set("workUnit6", Napi::Function::New(env, WorkUnit6));
  exports.Set("replicationEnable", Napi::Function::New(env, ReplicationEnable));
  exports.Set("flowEvents", Napi::Function::New(env, FlowEvents));
  exports.Set("flowImport", Napi::Function::New(env, FlowImport));
  exports.Set("flowEventsLost", Napi::Function::New(env, FlowEventsLost));
  exports.Set("unitLoads", Napi::Function::New(env, UnitLoads));
  exports.Set("flowRecordSize", Napi::Number::New(env, sizeof(ep_flow_record)));
  exports.Set("workUnits", Napi::Number::New(env, EP_WORK_UNITS));
  exports.Set("maxUnitPeers", Napi::Number::New(env, EP_MAX_UNIT_PEERS));
  exports.Set("maxPorts", Napi::Number::New(env, EP_MAX_PORTS));
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify));
  return exports;
}

}  // namespace

NODE_API_MODULE(edgeplane, Init)
