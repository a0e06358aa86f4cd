// Package policy makes SmartScale's scaling decisions as pure functions.
//
// [Decide] takes the signals of one Alertmanager notification, a cluster
// snapshot (nodes, pods, PodDisruptionBudgets), the node group's
// configuration, the state recorded for the group (last scale-up and
// scale-down, in-flight operations) and the time of the decision, and returns
// a [Plan]: scale up (how many nodes, in which zones and markets, which
// instance types), scale down (which node, which pods to evict) or do
// nothing. Every plan carries reasons ([Reason]) with a stable [Code] and a
// readable string such as "cooldown_active until=2026-01-01T10:05:00Z" or
// "no_candidate: node x has StatefulSet pod ns/y". The package does no I/O
// and reads no clock: the same input always yields the same plan, whatever
// the order of maps, so each rule below is a table test.
//
// [EnforceMinimum] (the reconciler's repair) and [Replacement] (a spot
// interruption) follow the same rules for bounds, zones and markets.
//
// # Counting
//
// The group's nodes are the snapshot nodes whose NodeGroup is the group's
// name. Nodes being provisioned — the Count (or, if larger, the number of
// Zones) of every in-flight scale_up operation — count toward the total and
// toward the zones listed; the scaler sets Count to the nodes that have not
// joined the snapshot yet. Every node of the group counts, Ready or not,
// cordoned or not: bounds are about instances. A node in a zone the group
// does not list counts toward the total but toward no zone.
//
// # Rules
//
//  1. Bounds. A plan never takes the group above maxNodes ("at_max", and a
//     scale-up is cut to the room left: "capped_at_max") nor below minNodes
//     ("at_min"), and never leaves a configured zone without a node: a
//     node that is its zone's last is no scale-down candidate ("zone_floor"),
//     and a scale-up first gives every empty zone a node ("zone_floor").
//     A scale-up below minNodes adds at least what reaches it ("below_min").
//
//  2. Scale-up step. One node for normal urgency, two for high
//     (scaleUpStep), the highest urgency among the signals winning
//     ("scale_up_step"). The step is raised to what the pending pods need
//     ("pending_pods_need"): the pods the scheduler marked unschedulable
//     (DaemonSet pods aside) are packed first-fit-decreasing onto empty new
//     nodes — the smallest allocatable among the group's instance types
//     (from the group's nodes in the snapshot, else Input.Capacity), less
//     the largest DaemonSet overhead seen on a node of the group. A pod that
//     no new node could run — larger than an empty node, or with a
//     nodeSelector, required node affinity or untolerated NoSchedule or
//     NoExecute taint that a new node of the group cannot satisfy — is
//     reported ("unschedulable_by_scale_up") and drives nothing, as in
//     Cluster Autoscaler. A new node carries the labels and blocking taints
//     that every node of the group shares (per-node labels such as the
//     hostname excluded) plus smartscale.io/nodegroup; zone, instance-type and
//     market labels are matched against the group's zones, instance types and
//     markets. Pods restricted to some zones are packed per set of zones and
//     their nodes placed in those zones. With no capacity known the pods are
//     not sized ("capacity_unknown"). Everything is capped by maxNodes.
//
//  3. Scale-down step: exactly one node per decision (scaleDownStep is not
//     read).
//
//  4. Cooldowns ("cooldown_active until=…"): no scale-up before
//     cooldowns.scaleUp (5m) has passed since the last scale-up; no
//     scale-down before cooldowns.scaleDown (10m) since the last
//     scale-down, nor before scaleDownDelayAfterScaleUp (10m) since the last
//     scale-up. Nothing at all while an operation on the group is in flight
//     ("operation_in_flight"). A zero time means never.
//
//  5. Both directions. When the signals ask for both, or for a scale-down
//     while a scale-up signal for the group is firing (the caller passes
//     every firing signal of the group), the scale-up wins and the
//     scale-down is dropped with "scale_up_wins". Signals of other groups
//     are ignored; no signal for the group is "no_signal".
//
//  6. Multi-AZ. New nodes go one by one to the zone with the fewest nodes,
//     ties to the zone configured first; a scale-down prefers the zone with
//     the most nodes (rule 8's third key) and never takes a zone's last node.
//
//  7. Spot mix ("spot_mix"). A scale-up launches as many spot nodes as put
//     the group's spot share after the launch nearest to spotPercentage
//     (an exact half rounds toward on-demand), spread over the zones with
//     the lowest spot share; a spot launch falls back to on-demand for its
//     shortfall (the cloud provider does it). Instance types are listed in
//     the configured order for diversification. A scale-down prefers, among
//     otherwise equal candidates, the market whose removal keeps the share
//     nearest the target.
//
//  8. Scale-down candidate. Only Ready, schedulable (uncordoned) nodes of the
//     group at least minNodeAge old (EC2 bills Linux per second after the
//     first minute, so age, not the billing hour, protects new nodes).
//     Excluded ("no_candidate: node x …"): a node annotated
//     cluster-autoscaler.kubernetes.io/scale-down-disabled="true",
//     cluster-autoscaler.kubernetes.io/safe-to-evict="false" or
//     karpenter.sh/do-not-disrupt="true"; a node running a pod so
//     annotated, a StatefulSet pod, a kube-system pod not owned by a
//     DaemonSet, a pod with local storage (hostPath, or emptyDir not in
//     memory), a pod with no controller, or a pod covered by a
//     PodDisruptionBudget whose disruptionsAllowed is 0 (an empty selector
//     covers its whole namespace). A pod annotated safe-to-evict="true" is
//     never a reason to exclude; DaemonSet pods are checked for the
//     annotations only, mirror (static) pods not at all, and finished pods
//     are ignored. Candidates rank by fewest non-DaemonSet pods, then lowest
//     requested CPU, then the zone with most nodes, then the spot mix
//     (rule 7), then oldest, then name. The first candidate whose evictable
//     pods all fit, by requests (CPU, memory, pod slots), on the other
//     Ready, uncordoned nodes of the cluster — honouring nodeSelector,
//     required node affinity and NoSchedule/NoExecute taints — is removed
//     ("scale_down_candidate"); candidates ranked before it whose pods do
//     not fit are "reschedule_check_failed", and with none left there is no
//     scale-down. Nodes are examined in rank order, so the exclusions found
//     on pods are reported for the nodes ranked before the one removed (for
//     all of them when none is); node-level exclusions for every node.
//
//  9. Dry run changes nothing here: Input has no dry-run setting, the plan
//     is the same, and the scaler does not execute it.
//
// # Repair and interruptions
//
// [EnforceMinimum], run by the reconciler, launches what brings the group up
// to minNodes ("below_min") and one node in every zone ("zone_floor"), empty
// zones first, with rule 7's spot mix and never above maxNodes; cooldowns do
// not apply, an in-flight operation does ("operation_in_flight"), and
// nothing to do is "floor_met". [Replacement] launches one node for an
// interrupted node only when, without it (and without nodes that in-flight
// scale-down or interruption operations remove), the group would fall below
// minNodes or leave a zone empty ("replace_interrupted", else
// "replacement_not_needed"); it goes to the interrupted node's zone unless
// another zone is empty, is spot only when the spot mix asks for it and
// another instance type exists, and lists the interrupted type last.
//
// Lists of per-node and per-pod reasons are cut after ten, with one more
// reason counting the rest, so a plan over a large cluster stays readable.
package policy
