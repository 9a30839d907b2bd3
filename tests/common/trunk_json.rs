//! [`TrunkJson`]: the one builder of trunk objects for tests, in the shape Bolna's API
//! lists them (`GET /sip-trunks/trunks`, `../shared/bolna-docs/list-trunks.txt`) and a
//! trunks file holds them.
//!
//! A constructor gives the base; each method changes one field; [`TrunkJson::set`],
//! [`TrunkJson::merge`] and [`TrunkJson::remove`] reach any other field, valid or not
//! (hostile cases). [`TrunkJson::build`] returns the `serde_json::Value`.
//!
//! ```ignore
//! let t = TrunkJson::probed("edge").gateway_at(gw.addr()).transport("transport-tcp").build();
//! let t = TrunkJson::g711("tls", "gw.test.local", port).transport("transport-tls").qualify(60).build();
//! let t = TrunkJson::new("t1").gateways(many).set("media_encryption", json!("zrtp")).build();
//! ```

use std::net::SocketAddr;

use serde_json::{json, Value};

/// A trunk object being built; see the module docs.
#[derive(Debug, Clone)]
pub struct TrunkJson(Value);

impl TrunkJson {
    /// The base every trunk starts from: `id`, `name` = `id`, provider `custom`, ip-based
    /// from `127.0.0.1`, `transport-udp`, active, no gateways and no `qualify_frequency`.
    pub fn new(id: &str) -> TrunkJson {
        TrunkJson(json!({
            "id": id, "name": id, "provider": "custom",
            "auth_type": "ip-based", "ip_identifiers": [{"ip_address": "127.0.0.1"}],
            "gateways": [], "transport": "transport-udp", "is_active": true
        }))
    }

    /// What `serve` tests probe: [`TrunkJson::new`] named `Trunk {id}`, probed every second;
    /// add its gateways.
    pub fn probed(id: &str) -> TrunkJson {
        TrunkJson::new(id).name(&format!("Trunk {id}")).qualify(1)
    }

    /// A trunk filled in like a carrier's sheet: [`TrunkJson::new`] identified by
    /// `127.0.0.1/32`, one gateway `host:port` with priority 1, G.711 only
    /// ([`TrunkJson::g711_only`]); no `qualify_frequency`.
    pub fn g711(id: &str, host: &str, port: u16) -> TrunkJson {
        TrunkJson::new(id)
            .ip_identifiers(&["127.0.0.1/32"])
            .ranked_gateway(host, port, 1)
            .g711_only()
    }

    pub fn name(self, name: &str) -> TrunkJson {
        self.set("name", json!(name))
    }

    /// Adds a gateway `{gateway_address, port}` after any others.
    pub fn gateway(self, host: &str, port: u16) -> TrunkJson {
        self.push_gateway(json!({"gateway_address": host, "port": port}))
    }

    /// [`TrunkJson::gateway`] at a socket address.
    pub fn gateway_at(self, addr: SocketAddr) -> TrunkJson {
        self.gateway(&addr.ip().to_string(), addr.port())
    }

    /// Adds a gateway `{gateway_address, port, priority}` after any others.
    pub fn ranked_gateway(self, host: &str, port: u16, priority: i64) -> TrunkJson {
        self.push_gateway(json!({"gateway_address": host, "port": port, "priority": priority}))
    }

    /// Replaces the gateways with `gateways`, any values at all.
    pub fn gateways(self, gateways: Vec<Value>) -> TrunkJson {
        self.set("gateways", Value::Array(gateways))
    }

    /// `transport-udp`, `transport-tcp`, `transport-tls`, or anything else.
    pub fn transport(self, transport: &str) -> TrunkJson {
        self.set("transport", json!(transport))
    }

    /// `qualify_frequency`, in seconds.
    pub fn qualify(self, seconds: i64) -> TrunkJson {
        self.set("qualify_frequency", json!(seconds))
    }

    /// Replaces the ip identifiers with one `{ip_address}` per entry.
    pub fn ip_identifiers(self, addresses: &[&str]) -> TrunkJson {
        let list = addresses.iter().map(|a| json!({"ip_address": a})).collect();
        self.set("ip_identifiers", Value::Array(list))
    }

    /// `allow: "ulaw,alaw"`, `disallow: "all"`.
    pub fn g711_only(self) -> TrunkJson {
        self.set("allow", json!("ulaw,alaw"))
            .set("disallow", json!("all"))
    }

    /// A userpass trunk of `username`, without ip identifiers (add `auth_password` with
    /// [`TrunkJson::set`] where a careless API would send it).
    pub fn userpass(self, username: &str) -> TrunkJson {
        self.set("auth_type", json!("userpass"))
            .set("auth_username", json!(username))
            .remove("ip_identifiers")
    }

    /// Sets any field to any value.
    pub fn set(mut self, field: &str, value: Value) -> TrunkJson {
        self.0[field] = value;
        self
    }

    /// [`TrunkJson::set`] for every field of the object `fields`.
    pub fn merge(self, fields: &Value) -> TrunkJson {
        let fields = fields.as_object().expect("merge takes a JSON object");
        fields
            .iter()
            .fold(self, |t, (field, value)| t.set(field, value.clone()))
    }

    /// Drops a field.
    pub fn remove(mut self, field: &str) -> TrunkJson {
        self.0.as_object_mut().unwrap().remove(field);
        self
    }

    pub fn build(self) -> Value {
        self.0
    }

    fn push_gateway(mut self, gateway: Value) -> TrunkJson {
        match self.0["gateways"].as_array_mut() {
            Some(list) => list.push(gateway),
            None => self.0["gateways"] = json!([gateway]),
        }
        self
    }
}
