"""The operations layer's own tables (notification subscriptions and deliveries
arrive with the notifications). Its post-migrate step (groups) needs this
module to exist."""
