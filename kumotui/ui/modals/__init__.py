"""The dialogs the main screens open: apply, edit, profile picker, rollback, hosts, export."""
