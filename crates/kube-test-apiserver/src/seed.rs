//! What a fresh test server holds: namespaces, a few running pods, the default ClusterRoles (rules close
//! to Kubernetes' own, without aggregation) and bindings, and the connector's cluster-admin binding.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::object;
use super::resources::{CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, NAMESPACES, PODS, RBAC, RESOURCES};
use super::store::{Change, Store};

pub const CONNECTOR_NAMESPACE: &str = "infra";
pub const CONNECTOR_ACCOUNT: &str = "infra-connector";
const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({ "apiGroups": groups, "resources": resources, "verbs": verbs })
}

fn view_rules() -> Vec<Value> {
    vec![
        rule(
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
            READ,
        ),
        rule(
            &[""],
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
            READ,
        ),
        rule(&[""], &["namespaces"], READ),
        rule(
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
            READ,
        ),
        rule(&["autoscaling"], &["horizontalpodautoscalers", "horizontalpodautoscalers/status"], READ),
        rule(&["batch"], &["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
        rule(&["policy"], &["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
        rule(&["networking.k8s.io"], &["ingresses", "ingresses/status", "networkpolicies"], READ),
        rule(&["discovery.k8s.io"], &["endpointslices"], READ),
    ]
}

fn edit_rules() -> Vec<Value> {
    let mut rules = view_rules();
    rules.extend([
        rule(&[""], &["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"], READ),
        rule(&[""], &["serviceaccounts"], &["impersonate"]),
        rule(&[""], &["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], WRITE),
        rule(&[""], &["pods/eviction"], &["create"]),
        rule(
            &[""],
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
            WRITE,
        ),
        rule(&[""], &["serviceaccounts/token"], &["create"]),
        rule(
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
            WRITE,
        ),
        rule(&["autoscaling"], &["horizontalpodautoscalers"], WRITE),
        rule(&["batch"], &["cronjobs", "jobs"], WRITE),
        rule(&["policy"], &["poddisruptionbudgets"], WRITE),
        rule(&["networking.k8s.io"], &["ingresses", "networkpolicies"], WRITE),
    ]);
    rules
}

fn admin_rules() -> Vec<Value> {
    let mut rules = edit_rules();
    rules.extend([
        rule(&["authorization.k8s.io"], &["localsubjectaccessreviews"], &["create"]),
        rule(&[RBAC], &["rolebindings", "roles"], &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]),
    ]);
    rules
}

fn cluster_role(name: &str, rules: Vec<Value>) -> Value {
    json!({ "metadata": { "name": name, "labels": { "kubernetes.io/bootstrapping": "rbac-defaults" } }, "rules": rules })
}

fn binding(name: &str, role: &str, subjects: Value) -> Value {
    json!({
        "metadata": { "name": name, "labels": { "kubernetes.io/bootstrapping": "rbac-defaults" } },
        "roleRef": { "apiGroup": RBAC, "kind": "ClusterRole", "name": role },
        "subjects": subjects,
    })
}

fn group(name: &str) -> Value {
    json!({ "apiGroup": RBAC, "kind": "Group", "name": name })
}

fn pod(namespace: &str, name: &str, app: &str, image: &str, ip: &str, started: &str) -> Value {
    json!({
        "metadata": { "name": name, "namespace": namespace, "labels": { "app": app } },
        "spec": {
            "containers": [{ "name": app, "image": image, "ports": [{ "containerPort": 80, "protocol": "TCP" }] }],
            "nodeName": "test-node", "restartPolicy": "Always",
        },
        "status": {
            "phase": "Running", "podIP": ip, "podIPs": [{ "ip": ip }], "hostIP": "10.0.0.10", "startTime": started,
            "conditions": [{ "type": "Ready", "status": "True", "lastTransitionTime": started }],
            "containerStatuses": [{
                "name": app, "image": image, "imageID": "", "containerID": format!("containerd://{name}"),
                "ready": true, "started": true, "restartCount": 0, "state": { "running": { "startedAt": started } },
            }],
        },
    })
}

pub fn seed(store: &Store) {
    let created = object::timestamp(OffsetDateTime::now_utc() - time::Duration::hours(2));
    let put = |rid: usize, mut obj: Value| {
        let def = &RESOURCES[rid];
        obj["kind"] = def.kind.into();
        obj["apiVersion"] = def.api_version().into();
        let (ns, name) = (object::meta_str(&obj, "namespace").to_string(), object::meta_str(&obj, "name").to_string());
        if let Some(meta) = object::meta_mut(&mut obj) {
            meta.insert("uid".into(), object::uid().into());
            meta.insert("creationTimestamp".into(), created.clone().into());
        }
        if let Err(e) = store.mutate(rid, &ns, &name, |_| Ok(Change::Put(obj))) {
            tracing::error!(error = %e, "kube-test-apiserver: cannot seed {name}");
        }
    };
    for ns in ["default", "kube-system", "web", "db"] {
        put(
            NAMESPACES,
            json!({
                "metadata": { "name": ns, "labels": { "kubernetes.io/metadata.name": ns } },
                "spec": { "finalizers": ["kubernetes"] }, "status": { "phase": "Active" },
            }),
        );
    }
    put(PODS, pod("web", "web-0", "web", "nginx:1.27", "10.244.0.10", &created));
    put(PODS, pod("web", "web-1", "web", "nginx:1.27", "10.244.0.11", &created));
    put(PODS, pod("db", "db-0", "db", "postgres:17", "10.244.0.20", &created));

    let everything = vec![rule(&["*"], &["*"], &["*"]), json!({ "nonResourceURLs": ["*"], "verbs": ["*"] })];
    put(CLUSTER_ROLES, cluster_role("cluster-admin", everything));
    put(CLUSTER_ROLES, cluster_role("admin", admin_rules()));
    put(CLUSTER_ROLES, cluster_role("edit", edit_rules()));
    put(CLUSTER_ROLES, cluster_role("view", view_rules()));
    put(
        CLUSTER_ROLES,
        cluster_role(
            "system:discovery",
            vec![json!({
                "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"],
                "verbs": ["get"],
            })],
        ),
    );
    put(
        CLUSTER_ROLES,
        cluster_role(
            "system:basic-user",
            vec![
                rule(&["authentication.k8s.io"], &["selfsubjectreviews"], &["create"]),
                rule(&["authorization.k8s.io"], &["selfsubjectaccessreviews", "selfsubjectrulesreviews"], &["create"]),
            ],
        ),
    );
    put(
        CLUSTER_ROLES,
        cluster_role(
            "system:public-info-viewer",
            vec![json!({
                "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"],
            })],
        ),
    );

    put(CLUSTER_ROLE_BINDINGS, binding("cluster-admin", "cluster-admin", json!([group(super::rbac::MASTERS)])));
    put(CLUSTER_ROLE_BINDINGS, binding("system:discovery", "system:discovery", json!([group("system:authenticated")])));
    put(CLUSTER_ROLE_BINDINGS, binding("system:basic-user", "system:basic-user", json!([group("system:authenticated")])));
    put(
        CLUSTER_ROLE_BINDINGS,
        binding("system:public-info-viewer", "system:public-info-viewer", json!([group("system:authenticated"), group("system:unauthenticated")])),
    );
    let mut connector =
        binding(CONNECTOR_ACCOUNT, "cluster-admin", json!([{ "kind": "ServiceAccount", "name": CONNECTOR_ACCOUNT, "namespace": CONNECTOR_NAMESPACE }]));
    connector["metadata"]["labels"] = json!({ "app.kubernetes.io/name": CONNECTOR_ACCOUNT });
    put(CLUSTER_ROLE_BINDINGS, connector);
}
