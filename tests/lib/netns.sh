# Machines on a private network, made of network namespaces: a switch (a
# bridge in a namespace of its own) and one namespace per machine, cabled to
# it by a veth. The host's interfaces and routes are never touched, so test
# addresses cannot clash with them. Needs root and iproute2.

# netns_switch NS: the switch, namespace NS holding bridge br0.
netns_switch() {
	ip netns add "$1"
	ip -n "$1" link add br0 type bridge
	ip -n "$1" link set br0 up
}

# netns_machine SWITCH NS PORT ADDR: namespace NS with lo up and ADDR/24 on
# its eth0, cabled to the switch's port PORT (`ip -n SWITCH link set PORT
# down` pulls the cable).
netns_machine() {
	local sw=$1 ns=$2 port=$3 addr=$4
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip link add eth0 netns "$ns" type veth peer name "$port" netns "$sw"
	ip -n "$sw" link set "$port" master br0 up
	ip -n "$ns" addr add "$addr/24" dev eth0
	ip -n "$ns" link set eth0 up
}
