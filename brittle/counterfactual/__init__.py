"""The paper's counterfactual search for data support: the two tasks that change the training set
(remove, mislabel), the searches over prefix sizes of a ranking (the paper's bisection, grid,
parallel), the counterfactual tests they ask (retrain, check the target), lockstep rounds across
targets, and the support CDF/AUC."""
