-- Why a device's configuration backups fail (empty: they work), and the SSH
-- host key it presented when that differs from the pin, until an operator
-- accepts it.
ALTER TABLE devices ADD COLUMN backup_problem TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN presented_ssh_host_key TEXT;
