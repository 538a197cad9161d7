"""The I/O room: targets that start a device (QEMU, Renode, an attached board), the client that
talks to it over the protocol, the journalled run of a case's windows, and link-fault injection.
It defines no math and no wire format (those are protocol/ and quant/)."""
