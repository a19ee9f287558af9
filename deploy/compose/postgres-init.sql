-- The databases of the compose stack, next to `modelcycle` (the monitoring store, POSTGRES_DB):
-- MLflow's tracking and registry store, MLflow's basic-auth users, Dagster's storage.
CREATE DATABASE mlflow OWNER modelcycle;
CREATE DATABASE mlflow_auth OWNER modelcycle;
CREATE DATABASE dagster OWNER modelcycle;
