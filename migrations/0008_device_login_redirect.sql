-- `infra login --web` on a machine with a browser: the CLI listens on a loopback port, and the console
-- sends the browser there once the person approved, so the CLI collects its key at once and the tab says
-- the terminal is logged in. Empty where no browser could open (the CLI polls instead).
ALTER TABLE device_logins ADD COLUMN redirect_port INTEGER;
